"""The whole lifecycle and the penalty chain, walked through the screens as each role would.

Each role logs in through the login form, starts from its home page (待我处理) or the menu,
clicks the case's buttons and fills the forms; nothing calls the API. 客服 registers a
complaint naming the complained staff with the picker; 人事行政经理 judges and dispatches;
the 工程部 head signs for it, investigates, plans, replies and feeds back; 客服 confirms the
customer was told; 人事行政经理 records the follow-up visit, closes and archives. Then the
head opens a penalty case (pickers for the staff member and the complaint) and proposes it,
人事行政经理 reviews, 总经理 approves, 人事行政经理 issues the 处罚通知书 and the 通报, and
the 客户投诉记录表 is downloaded.

The walk runs once (a module fixture) and records what a new user would trip over; each
test below asserts one kind of finding: the walk itself, console errors, English interface
text, pages slower than 1.5 s, and the pickers. Screenshots: test-results/walk-*.png.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest
from browser_support import BROWSER_MARKS, ROOT, Visit

pytestmark = BROWSER_MARKS

SHOTS = ROOT / "test-results"
SLOW_MS = 1500
# Latin text that is data or a code, not interface wording.
ALLOWED = re.compile(
    r"^(TS\d[\w-]*|CF\d[\w-]*|PDF|Excel|KB|MB|pdf|jpe?g|png|gif|docx?|xlsx?|mp[34]|mp|txt|csv|amr|wav|m4a|v\d+|[A-Z]{1,3}|WeCom|DingTalk|Admin|demo\w*|kefu|renshi|"
    r"zongjingli|zhuguan_\w+)$"
)
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z_]+(?:-[A-Za-z]+)*")
STRIP = re.compile(r"\S+@\S+|https?://\S+|/[\w/.-]+|\b[\w.-]+\.(?:pdf|xlsx|csv|png)\b")
CLOSING = "closing refusals"
COMPLAINT_TEXT = "8号楼电梯困人二十分钟，报修后维保人员迟迟未到。"


@dataclass
class Walk:
    """What the walk found, step by step."""

    steps: list[str] = field(default_factory=list)
    failure: str | None = None
    console: list[tuple[str, str]] = field(default_factory=list)
    english: list[tuple[str, list[str]]] = field(default_factory=list)
    slow: list[tuple[str, int]] = field(default_factory=list)
    # Where each slow page was, to be timed again: (username, URL).
    slow_urls: dict[str, tuple[str, str]] = field(default_factory=dict)
    timings: dict[str, dict[str, int]] = field(default_factory=dict)
    pickers: list[str] = field(default_factory=list)
    # Steps refused because of another engineer's item of issue 15, by item.
    others: dict[str, list[str]] = field(default_factory=dict)
    complaint_number: str = ""
    penalty_number: str = ""
    documents: dict[str, bytes] = field(default_factory=dict)


class Role:
    """One role's browser session: every page it loads is timed, read for English, screenshotted."""

    def __init__(self, walk: Walk, browser: Any, server: str, username: str):
        self.walk = walk
        self.server = server
        self.username = username
        self.visit = Visit(browser)
        self.page = self.visit.page
        self.page.set_default_timeout(15000)
        self.seen_errors = 0

    def __enter__(self) -> Role:
        self.visit.login(self.server, self.username)
        self.settled("home")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._collect_console(self.page.url)
        self.visit.close()

    def _collect_console(self, where: str) -> None:
        for message in self.visit.errors[self.seen_errors :]:
            self.walk.console.append((f"{self.username} {where}", message))
        self.seen_errors = len(self.visit.errors)

    def settled(self, name: str) -> None:
        """A page finished loading: time it, read its text for English, take its picture."""
        page = self.page
        page.wait_for_load_state("load")
        page.wait_for_function(
            "() => { const n = performance.getEntriesByType('navigation')[0]; return n && n.loadEventEnd > 0; }"
        )
        took, server_ms, ready = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.loadEventEnd - n.startTime, n.responseStart - n.requestStart,"
            " n.domContentLoadedEventEnd - n.startTime].map(Math.round); }"
        )
        label = f"{self.username}: {name}"
        self.walk.timings[label] = {"load": took, "server": server_ms, "dom_ready": ready}
        if took > SLOW_MS:
            self.walk.slow.append((label, took))
            self.walk.slow_urls[label] = (self.username, page.url)
        self.read_for_english(label)
        self._collect_console(name)
        self.walk.steps.append(label)
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = re.sub(r"[^\w-]+", "-", f"walk-{len(self.walk.steps):02d}-{self.username}-{name}").strip("-")
        page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)

    def read_for_english(self, label: str) -> None:
        text = self.page.evaluate("() => document.body.innerText")
        text = STRIP.sub(" ", text)
        words = sorted({w for w in LATIN_WORD.findall(text) if not ALLOWED.match(w)})
        titles = self.page.evaluate(
            "() => Array.from(document.querySelectorAll('[title],[placeholder],[aria-label]'))"
            ".filter(e => e.offsetParent !== null)"
            ".map(e => [e.getAttribute('title'), e.getAttribute('placeholder'), e.getAttribute('aria-label')].join(' '))"
            ".join(' ')"
        )
        words += sorted({w for w in LATIN_WORD.findall(STRIP.sub(" ", titles)) if not ALLOWED.match(w)} - set(words))
        if words:
            self.walk.english.append((label, words))

    def navigate(self, name: str, click: Callable[[], Any]) -> None:
        with self.page.expect_navigation():
            click()
        self.settled(name)

    def menu(self, section: str, item: str) -> None:
        """Open a menu section of the top bar and click one of its items."""
        page = self.page
        page.locator(".navbar a.dropdown-toggle", has_text=section).first.click()
        self.navigate(
            item,
            lambda: page.locator(
                ".navbar .dropdown.open .dropdown-menu a", has_text=re.compile(f"^\\s*{re.escape(item)}\\s*$")
            ).first.click(),
        )

    def open_from_home(self, number: str, expected_kind: str) -> None:
        """From the home page's 待我处理, open the case waiting for this role."""
        page = self.page
        self.navigate("home", lambda: page.goto(self.server + "/"))
        row = page.locator("#awaiting-me tr.awaiting-item", has_text=number)
        assert row.count() >= 1, f"{self.username}: {number} is not in 待我处理"
        kinds = [row.nth(i).get_attribute("data-kind") for i in range(row.count())]
        assert expected_kind in kinds, (self.username, number, kinds)
        self.navigate(f"case {number}", lambda: row.first.get_by_role("link", name=number).click())

    def step(self, button: str, values: dict[str, str] | None = None, refusal_ok: bool = False) -> list[str]:
        """Click a step's button on the case page, fill its dialog and submit it."""
        page = self.page
        page.locator(".actions-bar button", has_text=re.compile(f"^{re.escape(button)}$")).first.click()
        dialog = page.locator(".modal.in")
        dialog.wait_for(state="visible")
        for name, value in (values or {}).items():
            control = dialog.locator(f"[name={name}]")
            if control.evaluate("e => e.tagName") == "SELECT":
                control.select_option(label=value)
            else:
                control.fill(value)
        self.navigate(button, lambda: dialog.locator("button[type=submit]").click())
        return self.expect_no_refusal(button, refusal_ok)

    def expect_no_refusal(self, what: str, refusal_ok: bool = False) -> list[str]:
        """The page shows no refusal (red message); with ``refusal_ok`` its texts are returned instead."""
        texts = [t.strip("×\n ") for t in self.page.locator(".alert-danger:visible").all_inner_texts()]
        assert refusal_ok or not texts, f"{self.username} {what}: {texts}"
        return texts

    def pick(self, select_id: str, text: str) -> None:
        """Choose ``text`` in a search picker the way a user does: open it, type, click the hit."""
        page = self.page
        container = page.locator(f"#{select_id} + .select2-container")
        with page.expect_response(lambda r: "/lookup" in r.url) as opened:
            container.click()
        if opened.value.status != 200:
            self.walk.pickers.append(f"{select_id}: opening the picker answered {opened.value.status}")
        search = page.locator(".select2-container--open .select2-search__field").first
        search.wait_for(state="visible")
        if not search.evaluate("e => e === document.activeElement"):
            self.walk.pickers.append(f"{select_id}: the search box has no focus when the picker opens")
            search.click()
        message = page.locator(".select2-results__message:visible")
        if message.count() and re.search(r"[A-Za-z]{3,}", message.first.inner_text()):
            self.walk.pickers.append(f"{select_id}: the picker says “{message.first.inner_text()}”")
        with page.expect_response(lambda r: "/lookup" in r.url and r.status == 200):
            page.keyboard.type(text)
        page.locator(".select2-results__option", has_text=text).first.click()
        chosen = page.locator(f"#{select_id} option:checked").all_inner_texts()
        assert any(text in c for c in chosen), (select_id, text, chosen)

    def fetch(self, href: str) -> bytes:
        """A download the page links to, through the browser's session."""
        response = self.page.request.get(href if href.startswith("http") else self.server + href)
        assert response.status == 200, (href, response.status)
        return response.body()


def _complaint(walk: Walk, browser: Any, server: str) -> None:
    with Role(walk, browser, server, "kefu") as kefu:
        page = kefu.page
        kefu.menu("投诉处理", "登记投诉")
        page.select_option("#channel", label="电话", force=True)
        page.fill("#customer_name", "刘德明")
        page.fill("#customer_phone", "13912345678")
        page.fill("#subject", "电梯困人")
        page.fill("#content", COMPLAINT_TEXT)
        page.fill("#customer_demand", "尽快修好并道歉")
        page.select_option("#category", label="设备故障", force=True)
        page.select_option("#level", label="一般", force=True)
        page.select_option("#department", label="工程部", force=True)
        kefu.pick("staff", "刘强")
        kefu.navigate("registered", lambda: page.locator("form button[type=submit]").last.click())
        kefu.expect_no_refusal("register")
        header = page.locator(".case-header h3").inner_text()
        walk.complaint_number = re.search(r"TS[\d-]+", header).group(0)
        assert "刘强" in page.locator("[data-field=staff]").inner_text()
    number = walk.complaint_number

    with Role(walk, browser, server, "renshi") as hr:
        hr.open_from_home(number, "judge_valid")
        hr.step("判定成立", {"validity_reason": "电梯确有困人，维保到场超时。"})
        hr.step("转派被投诉部门", {"department": "工程部"})

    with Role(walk, browser, server, "zhuguan_a") as head:
        head.open_from_home(number, "sign_for")
        head.step("签收")
        head.step("开始调查")
        head.step(
            "填写调查结果和处理方案",
            {
                "findings": "维保人员路上堵车，到场晚二十分钟。",
                "responsible_staff": "刘强",
                "resolution_plan": "加派夜班维保并向业主致歉。",
            },
        )
        head.step("答复客户", {"reply_text": "刘先生您好，电梯已修复，我们已加派夜班维保人员，给您带来不便深表歉意。"})
        head.step("反馈人事行政部", {"feedback_note": "已答复业主，业主表示理解。"})

    with Role(walk, browser, server, "kefu") as kefu:
        kefu.open_from_home(number, "confirm_informed")
        kefu.step("确认已告知客户处理结果", {"method": "电话", "informed_note": "已电话告知刘先生处理结果。"})

    with Role(walk, browser, server, "renshi") as hr:
        hr.open_from_home(number, "follow_up")
        hr.step("登记回访", {"satisfaction": "满意", "follow_up_note": "业主对处理结果满意。"})
        refused = hr.step("结案", {"close_note": "处理及时，业主满意。"}, refusal_ok=True)
        if refused:  # the customer was told already: closing must ask nothing more
            walk.others.setdefault(CLOSING, []).append(f"结案 refused: {refused}")
            hr.step("结案", {"close_note": "处理及时，业主满意。", "customer_informed": "电话"})
        hr.step("归档")
        status = hr.page.locator(".case-header .status").inner_text()
        assert status == "已归档", status
        href = hr.page.get_by_role("link", name=re.compile("客户投诉记录表")).first.get_attribute("href")
        walk.documents["record_form"] = hr.fetch(href)


def _penalty(walk: Walk, browser: Any, server: str) -> None:
    with Role(walk, browser, server, "zhuguan_a") as head:
        page = head.page
        head.menu("奖惩管理", "处罚")
        head.navigate("open a penalty case", lambda: page.locator("a[href*='/penaltyview/add']").first.click())
        head.pick("staff", "刘强")
        head.pick("complaint", walk.complaint_number)
        rule = page.locator("#rule option", has_text="第六条第2款A").first.get_attribute("value")
        page.select_option("#rule", value=rule, force=True)
        page.fill("#facts", "8号楼电梯困人，维保到场超时二十分钟。")
        head.navigate("penalty opened", lambda: page.locator("form button[type=submit]").last.click())
        head.expect_no_refusal("open a penalty case")
        walk.penalty_number = re.search(r"CF[\d-]+", page.locator(".case-header h3").inner_text()).group(0)
        head.step("提出处罚")
    number = walk.penalty_number

    with Role(walk, browser, server, "renshi") as hr:
        hr.open_from_home(number, "review")
        hr.step("审核并报总经理")

    with Role(walk, browser, server, "zongjingli") as gm:
        gm.open_from_home(number, "approve")
        gm.step("批准")

    with Role(walk, browser, server, "renshi") as hr:
        page = hr.page
        hr.open_from_home(number, "issue_notice")
        hr.step("签发处罚通知书")
        walk.documents["penalty_notice"] = hr.fetch(page.get_by_role("link", name="下载通知书").get_attribute("href"))
        # Issuing asks for confirmation first, showing what will be issued (issue 15 item 4).
        page.get_by_role("button", name="签发全公司通报").click()
        dialog = page.locator("#issue-circular")
        dialog.locator("button[type=submit]").wait_for(state="visible")
        assert "通字" in dialog.locator(".issue-preview").inner_text()
        hr.navigate("circular issued", lambda: dialog.locator("button[type=submit]").click())
        hr.expect_no_refusal("circular")
        documents = page.locator(".panel:has(> .panel-heading strong:text-is('已签发文书'))").locator("tbody tr")
        circular = documents.filter(has_text="通字").first
        circular_number = circular.locator("td").first.inner_text().strip()
        download = circular.locator("a[href*='download']:not([href*='inline'])").first
        walk.documents["circular"] = hr.fetch(download.get_attribute("href"))
        hr.menu("奖惩管理", "已签发文书")
        assert page.locator("table tbody tr", has_text=circular_number).count() == 1, circular_number


@pytest.fixture(scope="module")
def walk(server: str, browser: Any) -> Iterator[Walk]:
    found = Walk()
    try:
        _complaint(found, browser, server)
        _penalty(found, browser, server)
    except Exception:  # the tests below report where the walk stopped
        last = found.steps[-1] if found.steps else "the start"
        found.failure = f"after “{last}”:\n{traceback.format_exc()}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in asdict(found).items() if k != "documents"}
    (SHOTS / "walk-findings.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    yield found


def test_the_lifecycle_and_the_penalty_chain_walk_through_the_screens(walk):
    assert walk.failure is None, walk.failure
    assert walk.complaint_number and walk.penalty_number
    for kind, pdf in walk.documents.items():
        assert pdf.startswith(b"%PDF"), kind
    assert set(walk.documents) == {"record_form", "penalty_notice", "circular"}


def test_no_page_of_the_walk_logs_a_console_error(walk):
    assert not walk.console, walk.console


def test_no_page_of_the_walk_shows_english_interface_text(walk):
    assert not walk.english, walk.english


def _load_ms(visit: Visit, url: str) -> int:
    visit.page.goto(url)
    visit.page.wait_for_function(
        "() => { const n = performance.getEntriesByType('navigation')[0]; return n && n.loadEventEnd > 0; }"
    )
    return visit.page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0]; return Math.round(n.loadEventEnd - n.startTime); }"
    )


def test_every_page_of_the_walk_loads_within_1_5_seconds(walk, browser, server):
    """A page slow in the walk is loaded again, twice, as the same user: one slow load can be the
    machine's (the suite runs beside it on the same cores); a page slow three times is the portal's."""
    assert walk.timings, "no page was timed"
    still_slow = []
    visits: dict[str, Visit] = {}  # one login per user (the login form is rate-limited)
    try:
        for label, took in walk.slow:
            username, url = walk.slow_urls[label]
            if username not in visits:
                visits[username] = Visit(browser)
                visits[username].login(server, username)
            again = min(_load_ms(visits[username], url) for _ in range(2))
            if again > SLOW_MS:
                still_slow.append((label, took, again))
    finally:
        for visit in visits.values():
            visit.close()
    assert not still_slow, still_slow


def test_closing_after_the_customer_was_told_asks_nothing_more(walk):
    assert "结案" in " ".join(walk.steps), "the walk did not reach the closing"
    assert not walk.others.get(CLOSING), walk.others[CLOSING]


def test_the_pickers_open_focused_and_list_rows_in_chinese(walk):
    assert walk.steps, "the walk used no picker"
    assert not walk.pickers, walk.pickers
