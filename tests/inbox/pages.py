"""Reading the inbox's HTML in tests: sign in, find an item's decision form, submit it."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

import httpx

SECOND_OPTIONS = ("approve", "reject", "iterate")


class _Forms(HTMLParser):
    """Every form's hidden fields and button values, by the item (`li`) it sits in."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self._item: str | None = None
        self._form: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "li" and "data-run" in a:
            self._item = f"{a['data-run']}:{a['data-checkpoint']}"
        elif tag == "form":
            self._form = {"item": self._item, "action": a.get("action"), "fields": {}, "buttons": []}
            self.forms.append(self._form)
        elif self._form is not None and tag == "input" and a.get("type") == "hidden":
            fields = self._form["fields"]
            assert isinstance(fields, dict)
            fields[a["name"]] = a.get("value", "")
        elif self._form is not None and tag == "button" and a.get("name") == "decision":
            buttons = self._form["buttons"]
            assert isinstance(buttons, list)
            buttons.append(a["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "li":
            self._item = None


def decision_form(html: str, run_id: str, checkpoint: str) -> tuple[dict[str, str], list[str]] | None:
    """The hidden fields and the option buttons of one item's form; None when not shown."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if form["item"] == f"{run_id}:{checkpoint}" and form["action"] == "/inbox/decide":
            fields, buttons = form["fields"], form["buttons"]
            assert isinstance(fields, dict) and isinstance(buttons, list)
            return dict(fields), list(buttons)
    return None


def result_of(html: str) -> tuple[str, str]:
    """The shown decision result: (status, text)."""
    match = re.search(r'id="decision-result" data-status="([a-z]+)">(.*?)</p>', html, re.S)
    assert match, "no decision result on the page"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", match.group(2)))
    return match.group(1), unescape(text).strip()


async def sign_in(http: httpx.AsyncClient, token: str) -> None:
    http.cookies.clear()
    page = await http.get("/inbox/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    signed = await http.post("/inbox/login", data={"csrf": csrf.group(1), "token": token, "next": "/inbox"})
    assert signed.status_code == 303 and signed.headers["location"] == "/inbox", signed.text
