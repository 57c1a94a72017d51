"""Posts (岗位) and who held them when: the org chart that chained liability reads.

A :class:`~app.models.Post` reports to a superior post; :class:`~app.models.PostHolding`
rows say who held it from which day to which day (both included; open ends mean "since
before the records" and "still held"). Moving someone ends a holding and starts another,
so the chart of any past day can be read back. Plain functions in the caller's
transaction; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.i18n import _l
from app.lifecycle import ValidationFailed
from app.models import Post, PostHolding, Staff


def _held_on(day: date):  # noqa: ANN202 - an SQL condition
    return (
        or_(PostHolding.valid_from.is_(None), PostHolding.valid_from <= day),
        or_(PostHolding.valid_to.is_(None), PostHolding.valid_to >= day),
    )


def post_of(session: Session, staff: Staff, day: date) -> Post | None:
    """The post ``staff`` held on ``day`` (the most recently started one if several)."""
    stmt = (
        select(Post)
        .join(PostHolding, PostHolding.post_id == Post.id)
        .where(PostHolding.staff_id == staff.id, *_held_on(day))
        .order_by(PostHolding.valid_from.desc().nulls_last(), PostHolding.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def holder_on(session: Session, post: Post, day: date) -> Staff | None:
    """Who held ``post`` on ``day`` (None: vacant)."""
    stmt = (
        select(Staff)
        .join(PostHolding, PostHolding.staff_id == Staff.id)
        .where(PostHolding.post_id == post.id, *_held_on(day))
        .order_by(PostHolding.valid_from.desc().nulls_last(), PostHolding.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


@dataclass(frozen=True)
class Seat:
    """One post above the person responsible, as held on the day: the post and its holder (None: vacant)."""

    post: Post
    holder: Staff | None


def chain_above(session: Session, staff: Staff, day: date, depth: int = 2) -> list[Seat] | None:
    """The posts above ``staff``'s post on ``day``, nearest first, with their holders then.

    None when ``staff`` held no post that day (the caller falls back to the staff record's
    direct superior). A vacant post is returned with no holder: the chain goes on above it.
    """
    post = post_of(session, staff, day)
    if post is None:
        return None
    seats: list[Seat] = []
    seen = {post.id}
    current = post.superior
    while current is not None and len(seats) < depth and current.id not in seen:
        seen.add(current.id)
        seats.append(Seat(current, holder_on(session, current, day)))
        current = current.superior
    return seats


def check_holding(session: Session, holding: PostHolding) -> None:
    """A holding's dates are in order and do not overlap another holding of the same post."""
    errors: dict[str, list[str]] = {}
    if holding.valid_from and holding.valid_to and holding.valid_to < holding.valid_from:
        errors["valid_to"] = [str(_l("The end date must not be before the start date."))]
    with session.no_autoflush:
        _check_overlap(session, holding, errors)
    if errors:
        raise ValidationFailed(errors)


def _check_overlap(session: Session, holding: PostHolding, errors: dict[str, list[str]]) -> None:
    start, end = holding.valid_from or date.min, holding.valid_to or date.max
    post_id = holding.post.id if holding.post is not None else holding.post_id
    others = session.scalars(
        select(PostHolding).where(PostHolding.post_id == post_id, PostHolding.id != (holding.id or 0))
    ).all()
    for other in others:
        if (other.valid_from or date.min) <= end and start <= (other.valid_to or date.max):
            errors.setdefault("valid_from", []).append(
                str(_l("The post is held by %(name)s in that period: end that holding first.", name=other.staff.name))
            )
            break


def move(session: Session, staff: Staff, post: Post, day: date) -> PostHolding:
    """``staff`` takes ``post`` from ``day``: their current holding and the post's current one end the day before."""
    before = day - timedelta(days=1)
    current = session.scalars(
        select(PostHolding).where(
            or_(PostHolding.staff_id == staff.id, PostHolding.post_id == post.id), PostHolding.valid_to.is_(None)
        )
    ).all()
    for holding in current:
        holding.valid_to = before
    holding = PostHolding(post=post, staff=staff, valid_from=day)
    session.add(holding)
    session.flush()
    return holding


def check_post(session: Session, post: Post) -> None:
    """A post does not report to itself, directly or through the posts above it."""
    superior = post.superior if post.superior is not None else session.get(Post, post.superior_id or 0)
    seen: set[int] = set()
    while superior is not None and superior.id not in seen:
        if superior is post or (post.id is not None and superior.id == post.id):
            raise ValidationFailed({"superior": [str(_l("A post cannot report to itself, directly or not."))]})
        seen.add(superior.id)
        superior = superior.superior
