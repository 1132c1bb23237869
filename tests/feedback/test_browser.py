"""The widget and the hosted page in real Chromium (Playwright), against a live server.

Set OFFERLAB_SCREENSHOTS=docs to also write the README screenshots
(docs/feedback-widget.png, docs/feedback-page.png) at phone width.
"""

import os
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from feedback.models import Answer, Display, Response
from feedback.services import survey_for_offer
from tests.factories import running_experiment
from tests.feedback.conftest import make_offer, make_survey

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
SCREENSHOTS = os.environ.get("OFFERLAB_SCREENSHOTS")

# A storefront page with hostile global styles: the widget's shadow root must not inherit them.
HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Lumen Shop</title>
<style>
  body {{ margin: 0; font: 17px Georgia, serif; background: #fbf7f0; color: #2b2118; }}
  header {{ background: #2b2118; color: #fbf7f0; padding: 14px 18px; font-weight: bold; }}
  main {{ padding: 18px; }}
  .product {{ background: #fff; border-radius: 10px; padding: 16px; margin-bottom: 14px; }}
  button {{ background: hotpink !important; font-family: serif !important; }}
</style></head><body>
<header>Lumen Shop</header>
<main>
  <div class="product"><h1 style="font-size:20px;margin:0 0 6px">Order confirmed</h1>
  <p style="margin:0">Thanks! Your Mirrorless Camera X100 ships tomorrow.</p></div>
  <div class="product"><strong>You might also like</strong>
  <p style="margin:6px 0 0">Lens cloth · Hard case</p>
  <button>Add both</button></div>
</main>
<script src="{script}" data-token="{token}" async></script>
</body></html>"""


@pytest.fixture
def phone(chromium):
    context = chromium.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


class _HostPageHandler(BaseHTTPRequestHandler):
    def __init__(self, *args, html: str, **kwargs):
        self.html = html
        super().__init__(*args, **kwargs)

    def do_GET(self):
        body = self.html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def storefront_page(settings):
    """Serve a storefront page on its own origin (another port) that embeds the widget."""
    servers = []

    def serve(html: str) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_HostPageHandler, html=html))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        origin = f"http://127.0.0.1:{server.server_port}"
        settings.CORS_ALLOWED_ORIGINS = [origin]
        return origin + "/order/confirmed"

    yield serve
    for server in servers:
        server.shutdown()


def _focused_text(page) -> str:
    """Text of the focused element, looking inside the widget's shadow root."""
    return page.evaluate(
        """() => { let el = document.activeElement;
                   while (el && el.shadowRoot && el.shadowRoot.activeElement)
                       el = el.shadowRoot.activeElement;
                   return el ? (el.getAttribute('aria-label') || el.textContent).trim() : ''; }"""
    )


def test_widget_on_a_storefront_page_saves_answers_and_thanks(live_server, storefront_page, phone):
    survey = make_survey(key="widget-flow")
    experiment = running_experiment("browser-widget")
    variant = experiment.variants.get(is_control=False)
    offer = make_offer(experiment=experiment, variant=variant)
    token = survey_for_offer(offer=offer)["token"]
    url = storefront_page(
        HOST_PAGE.format(script=f"{live_server.url}/static/feedback/widget.js", token=token)
    )

    phone.goto(url)
    widget = phone.get_by_role("region", name="Feedback survey")
    widget.get_by_text("Lens cloth, Hard case").wait_for()
    if SCREENSHOTS:
        phone.screenshot(path=Path(SCREENSHOTS) / "feedback-widget.png")
    rating = widget.get_by_role("button", name="4 out of 5")
    # The host page's `button { background: hotpink !important }` does not reach the widget.
    assert rating.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 105, 180)"
    box = widget.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    rating.click()
    widget.get_by_role("heading", name="Did it feel pushy?").wait_for()
    # Saved already: closing now would lose nothing.
    assert Answer.objects.get(response__offer=offer, question__key="helpful").numeric_value == 4
    assert _focused_text(phone) == "Did it feel pushy?"
    widget.get_by_role("button", name="No").click()
    widget.get_by_role("button", name="Fit with my purchase").click()
    widget.get_by_label("Your answer (optional)").fill("Nice match for my camera.")
    widget.get_by_role("button", name="Send").click()
    widget.get_by_text("Thank you!").wait_for()

    response = Response.objects.get(offer=offer)
    assert response.finished
    assert response.answers == {
        "helpful": 4,
        "pushy": False,
        "why": "Fit with my purchase",
        "comment": "Nice match for my camera.",
    }
    display = Display.objects.get(offer=offer)
    assert display.variant == variant and display.shown_at is not None
    assert survey.responses.count() == 1


def test_closing_mid_way_keeps_answers_and_the_typed_comment(
    live_server, storefront_page, chromium
):
    make_survey(key="partial-flow")
    offer = make_offer()
    token = survey_for_offer(offer=offer)["token"]
    url = storefront_page(
        HOST_PAGE.format(script=f"{live_server.url}/static/feedback/widget.js", token=token)
    )
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(url)
    widget = page.get_by_role("region", name="Feedback survey")
    widget.get_by_role("button", name="2 out of 5").click()
    widget.get_by_role("button", name="Yes").click()
    widget.get_by_role("button", name="Price").click()
    widget.get_by_label("Your answer (optional)").fill("Too soon after checkout")
    # Leave without pressing Send: the pagehide beacon saves the typed comment.
    page.goto("about:blank")
    context.close()

    response = _wait_for(lambda: Response.objects.filter(offer=offer, answers__has_key="comment"))
    assert response.finished is False
    assert response.answers == {
        "helpful": 2,
        "pushy": True,
        "why": "Price",
        "comment": "Too soon after checkout",
    }


def test_hosted_page_works_with_the_keyboard_alone(live_server, phone):
    survey = make_survey(key="hosted-flow", with_text=False)
    offer = make_offer(channel="email")
    result = survey_for_offer(offer=offer)

    phone.goto(f"{live_server.url}/feedback/s/{result['token']}")
    phone.get_by_role("heading", name="How helpful was this suggestion?").wait_for()
    if SCREENSHOTS:
        phone.screenshot(path=Path(SCREENSHOTS) / "feedback-page.png", full_page=True)
    phone.keyboard.press("Tab")
    assert _focused_text(phone) == "1 out of 5, Not helpful"
    for _ in range(4):
        phone.keyboard.press("Tab")
    assert _focused_text(phone) == "5 out of 5, Very helpful"
    phone.keyboard.press("Enter")
    phone.get_by_role("heading", name="Did it feel pushy?").wait_for()
    assert _focused_text(phone) == "Did it feel pushy?"
    phone.keyboard.press("Tab")
    phone.keyboard.press("Tab")
    assert _focused_text(phone) == "No"
    phone.keyboard.press("Space")
    phone.get_by_role("heading", name="What mattered most?").wait_for()
    phone.keyboard.press("Tab")
    phone.keyboard.press("Enter")  # "Price"
    phone.get_by_text("Thank you!").wait_for()

    response = Response.objects.get(offer=offer)
    assert response.finished
    assert response.answers == {"helpful": 5, "pushy": False, "why": "Price"}
    assert survey.displays.get().shown_at is not None

    # Reloading the finished survey says so instead of asking again.
    phone.reload()
    phone.get_by_text("You have already answered. Thank you!").wait_for()


def test_hosted_page_with_a_tampered_link_explains_and_saves_nothing(live_server, phone):
    make_survey(key="tampered")
    offer = make_offer()
    token = survey_for_offer(offer=offer)["token"]
    response = phone.goto(f"{live_server.url}/feedback/s/{token[:-2]}xx")
    assert response.status == 403
    assert (
        phone.get_by_role("alert")
        .inner_text()
        .startswith("This survey link is not valid or has expired.")
    )
    assert not Response.objects.exists()


def _wait_for(query, timeout: float = 5.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = query().first()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError("the beacon's answer never arrived")
