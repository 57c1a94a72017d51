"""Text similarity of complaints: "the same issue" read from what the complaints say.

The subject and content are segmented with jieba (a small user dictionary of property and
after-sales words; building / unit / room identifiers such as 8号楼 or 2单元 kept whole, since
they name the place), stop-words and bare numbers dropped, and compared by TF-IDF cosine
(scikit-learn). Word tokens, not character n-grams: character bigrams of two unrelated
服务态度 complaints share 态度, 服务, 工作, 人员 … and score as high as two wordings of the
same broken lift, while the words that name the place and the object (8号楼, 电梯, 停运) are
what tell an issue apart (tests/test_similarity.py measures both).

jieba loads its dictionary (~1 s) lazily, once per process, and is silenced at import.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any, Optional

from sqlalchemy.orm import Session

from app import settings

DEFAULT_THRESHOLD = 0.3
SHARED_WORDS = 5

# Place identifiers: 8号楼, 3栋, 2单元, 12层, 1201室, B座 … kept as one token each.
# A place number is short (8号楼, 2单元, 1201室, B座): bounded, so that a long run of letters or
# digits with no place word after it costs linear time, not quadratic (a 5,000-character text of
# letters took 0.4 s per call, 20,000 took 6 s).
_PLACE = re.compile(r"([0-9０-９一二三四五六七八九十百A-Za-z]{1,8})\s{0,3}(号楼|栋|幢|座|单元|层|楼|室|号门|号|期|区)")
_NUMBER = re.compile(r"^[0-9０-９.．%％:：/\-]+$")
_WORD = re.compile(r"\w", re.UNICODE)

# Domain words jieba's general dictionary splits or does not know.
USER_WORDS = (
    "电梯",
    "物业",
    "物业费",
    "物业公司",
    "停车费",
    "停车场",
    "地下车库",
    "门禁",
    "门禁卡",
    "监控",
    "保安",
    "保洁",
    "绿化",
    "垃圾桶",
    "垃圾清运",
    "漏水",
    "渗水",
    "停水",
    "停电",
    "停运",
    "困人",
    "噪音",
    "异味",
    "维修师傅",
    "工作人员",
    "客服",
    "热线",
    "退费",
    "发票",
    "快递",
    "送货",
    "售后",
    "安装",
    "空调",
    "暖气",
    "供暖",
    "燃气",
    "水管",
    "下水道",
    "堵塞",
    "业主群",
    "北门",
    "南门",
    "东门",
    "西门",
)

# Function words and the words every complaint uses; they say nothing about which issue it is.
STOP_WORDS = frozenset(
    """
    的 了 和 与 及 或 是 在 有 没 没有 不 也 都 又 还 就 才 再 很 太 更 最 非常 特别 一直 已经 总是 仍然 依然
    我 我们 你 你们 他 他们 她 它 这 那 这个 那个 这些 那些 这里 那里 这样 那样 什么 怎么 为什么 如何 哪
    个 些 次 位 名 种 件 下 上 中 里 后 前 时 时候 今天 昨天 明天 现在 之前 之后 以后 以来 当时
    吗 呢 吧 啊 呀 哦 嘛 啦 着 过 把 被 给 让 对 向 从 到 为 以 于 由 而 但 但是 可是 而且 并且 因为 所以 如果
    请 请问 希望 要求 尽快 马上 立即 立刻 麻烦 谢谢 一下 一些 一个 一次 多次 几次 反复 好几 多 少 能 会 要 想
    可以 应该 需要 必须 说 讲 问 看 做 去 来 用 叫 打 说明 表示 反映 投诉 举报 客户 顾客 业主 用户 本人 先生 女士
    问题 情况 事情 事 处理 解决 回复 答复 联系 电话 处理结果 结果 公司 部门 相关 有关 进行 导致 造成 发生 出现
    服务 态度 服务态度 态度恶劣 态度差 态度很差 很差 太差 不好 差劲 恶劣 工作人员 人员 员工
    """.split()
)

# Different wordings of the same problem, read as one word (the first of each line).
SYNONYMS = {
    variant: canonical
    for canonical, variants in {
        "故障": "坏 坏了 又坏了 坏掉 故障 停运 停了 停用 不能用 用不了 不运行 失灵 不动 卡住 困人 关人",
        "维修": "修 修理 维修 没人修 无人修 报修 检修 抢修 不修 修好",
        "漏水": "漏水 渗水 滴水 渗漏 漏雨 返水",
        "噪音": "噪音 噪声 吵 太吵 吵闹 扰民",
        "停水": "停水 没水 断水",
        "停电": "停电 没电 断电",
        "收费": "收费 乱收费 多收 多收费 扣费 费用",
    }.items()
    for variant in variants.split()
}
# Durations and counts (三天, 好几天, 两次) say how long, not which issue.
_DURATION = re.compile(r"^[0-9０-９一二两三四五六七八九十几好半多]+(天|日|周|个月|月|年|小时|分钟|次|趟|遍)$")
# A department's name (工程部, 客服中心): the scan compares cases within a department anyway.
_DEPARTMENT = re.compile(r"^\w{1,6}(部|中心|科|处)$")
# A place identifier weighs this many times a word: it is what tells two lifts apart.
PLACE_WEIGHT = 2.0

_lock = threading.Lock()
_tokenizer: Optional[Any] = None


def _jieba() -> Any:
    """jieba, initialised once per process with the user dictionary (and quiet)."""
    global _tokenizer
    if _tokenizer is not None:
        return _tokenizer
    with _lock:
        if _tokenizer is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word in USER_WORDS:
                tokenizer.add_word(word, freq=2000)
            _tokenizer = tokenizer
    return _tokenizer


def _norm_place(match: re.Match) -> str:
    number = match.group(1).translate(str.maketrans("０１２３４５６７８９", "0123456789")).upper()
    return f"{number}{match.group(2)}"


def tokenize(text: Optional[str]) -> list[str]:
    """The words of a complaint text that can name its issue: places, objects, problems."""
    if not text:
        return []
    places = [_norm_place(m) for m in _PLACE.finditer(text)]
    rest = _PLACE.sub(" ", text)
    words = []
    for raw in _jieba().cut(rest):
        word = raw.strip().lower()
        if not word or not _WORD.search(word) or _NUMBER.match(word) or _DURATION.match(word):
            continue
        word = SYNONYMS.get(word, word)
        if word in STOP_WORDS or _is_cjk_single(word) or _DEPARTMENT.match(word):
            continue
        words.append(word)
    return places + words


def _is_cjk_single(word: str) -> bool:
    return len(word) == 1 and "\u4e00" <= word <= "\u9fff"


def case_text(subject: Optional[str], content: Optional[str]) -> str:
    """What a case says: its subject (unless it is only the content's summary) and content."""
    subject, content = (subject or "").strip(), (content or "").strip()
    if subject and content and (content.startswith(subject.rstrip("…")) or subject in content):
        return content
    return f"{subject}\n{content}".strip()


def threshold(session: Session) -> float:
    """The administrator's similarity threshold (``cluster.similarity_threshold``, 0–1)."""
    try:
        value = float(settings.get(session, "cluster.similarity_threshold"))
    except (TypeError, ValueError):
        return DEFAULT_THRESHOLD
    return value if 0 < value <= 1 else DEFAULT_THRESHOLD


class Matrix:
    """TF-IDF vectors of a set of texts (the IDF learnt from the same set) and their cosines."""

    def __init__(self, texts: Sequence[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.size = len(texts)
        self.vectorizer = TfidfVectorizer(
            tokenizer=tokenize, lowercase=False, token_pattern=None, sublinear_tf=True, norm="l2"
        )
        try:
            vectors = self.vectorizer.fit_transform(texts)
            self.terms = self.vectorizer.get_feature_names_out()
            self.vectors = _weigh_places(vectors, self.terms)
        except ValueError:  # no text has any word left
            from scipy.sparse import csr_matrix

            self.vectors = csr_matrix((len(texts), 1))
            self.terms = []

    def cosine(self) -> Any:
        """The sparse matrix of cosines between every two texts (vectors are L2-normalised)."""
        return (self.vectors @ self.vectors.T).tocsr()

    def scores_against(self, row: int) -> Any:
        """The cosines of text ``row`` with every text, as a dense 1-d array."""
        return (self.vectors @ self.vectors[row].T).toarray().ravel()

    def shared_words(self, rows: Sequence[int], limit: int = SHARED_WORDS) -> list[str]:
        """The key words the texts ``rows`` have in common (in most of them for 3 or more), by weight."""
        if not rows or not len(self.terms):
            return []
        sub = self.vectors[list(rows)]
        present = (sub > 0).sum(axis=0).A1
        needed = len(rows) if len(rows) <= 2 else max(2, -(-2 * len(rows) // 3))
        weight = sub.sum(axis=0).A1
        order = sorted((i for i in range(len(self.terms)) if present[i] >= needed), key=lambda i: -weight[i])
        return [str(self.terms[i]) for i in order[:limit]]


def is_place(term: str) -> bool:
    return _PLACE.fullmatch(term) is not None


def _weigh_places(vectors: Any, terms: Any) -> Any:
    """Scale the place identifiers' columns by PLACE_WEIGHT and normalise the rows again."""
    from scipy.sparse import diags
    from sklearn.preprocessing import normalize

    scale = [PLACE_WEIGHT if is_place(str(t)) else 1.0 for t in terms]
    return normalize(vectors @ diags(scale), norm="l2", copy=False).tocsr()


def groups(matrix: Matrix, minimum: float, block: int = 2000) -> list[list[int]]:
    """The texts linked by a cosine of at least ``minimum`` (connected components), 2 or more each.

    The cosines are computed a block of rows at a time and only the links kept, so a window of
    ten thousand cases never holds its dense similarity matrix."""
    from scipy.sparse import csr_matrix, vstack
    from scipy.sparse.csgraph import connected_components

    if matrix.size < 2:
        return []
    parts = []
    for first in range(0, matrix.size, block):
        sims = (matrix.vectors[first : first + block] @ matrix.vectors.T).tocsr()
        sims.data[sims.data < minimum - 1e-9] = 0
        sims.eliminate_zeros()
        parts.append(csr_matrix(sims))
    count, labels = connected_components(vstack(parts).tocsr(), directed=False)
    members: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        members.setdefault(int(label), []).append(row)
    return [rows for rows in members.values() if len(rows) >= 2]


def rank(query: str, texts: Sequence[str], minimum: float) -> list[tuple[int, float, list[str]]]:
    """The texts similar to ``query`` (cosine ≥ minimum), best first: (index, score, shared words)."""
    if not texts or not query.strip():
        return []
    matrix = Matrix([query, *texts])
    scores = matrix.scores_against(0)[1:]
    found = [(i, float(s)) for i, s in enumerate(scores) if s >= minimum - 1e-9]
    found.sort(key=lambda pair: -pair[1])
    return [(i, round(s, 3), matrix.shared_words([0, i + 1])) for i, s in found]
