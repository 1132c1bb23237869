/*! Offerlab feedback widget: a short post-offer survey, no dependencies.
 *
 * <script src="https://OFFERLAB/static/feedback/widget.js" data-token="TOKEN" async></script>
 *
 * Optional attributes: data-target="#css-selector" renders inline in that element (the hosted
 * page does this) instead of a floating card; data-api="https://OFFERLAB/" overrides the API
 * base, which is otherwise derived from this script's src.
 *
 * Each answer is saved the moment it is given; closing the page mid-way loses nothing.
 * The UI lives in a shadow root, so it neither inherits nor leaks the host page's styles.
 */
(function () {
  "use strict";

  var STYLE = [
    ":host{all:initial;display:block}",
    ":host([data-floating]){position:fixed;z-index:2147483000;right:16px;bottom:16px;",
    "width:min(360px,calc(100vw - 24px))}",
    "@media (max-width:480px){:host([data-floating]){right:12px;left:12px;bottom:12px;width:auto}}",
    ".card{box-sizing:border-box;position:relative;background:#fff;color:#1d2330;",
    "font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;border-radius:14px;",
    "padding:18px 18px 16px;box-shadow:0 6px 28px rgba(20,24,38,.18),0 1px 3px rgba(20,24,38,.12)}",
    ":host(:not([data-floating])) .card{box-shadow:0 1px 3px rgba(0,0,0,.08)}",
    ".top{display:flex;align-items:flex-start;gap:8px;margin:0 0 6px}",
    ".eyebrow{flex:1;margin:0;font-size:13px;color:#5a6275;letter-spacing:.01em}",
    ".about{display:block;color:#1d2330;font-weight:600;margin-top:2px}",
    ".close{all:unset;cursor:pointer;width:32px;height:32px;margin:-6px -8px 0 0;border-radius:8px;",
    "display:grid;place-items:center;color:#5a6275;font-size:22px;line-height:1}",
    ".close:hover{background:#f1f2f5}",
    "h2{font-size:18px;line-height:1.3;margin:10px 0 12px;font-weight:650;outline:none}",
    ".progress{font-size:12px;color:#5a6275;margin:0}",
    ".scale{display:grid;grid-template-columns:repeat(5,1fr);gap:8px}",
    ".ends{display:flex;justify-content:space-between;font-size:12px;color:#5a6275;margin-top:6px}",
    ".choices{display:grid;gap:8px}",
    ".two{grid-template-columns:1fr 1fr}",
    "button.opt{all:unset;box-sizing:border-box;cursor:pointer;min-height:46px;padding:10px 12px;",
    "border:1.5px solid #cfd4de;border-radius:10px;text-align:center;font-size:16px;",
    "font-weight:600;color:#1d2330;background:#fff;transition:background .12s,border-color .12s}",
    ".choices:not(.two) button.opt{text-align:left}",
    "button.opt:hover{border-color:#3457d5;background:#f3f6ff}",
    "button.opt[aria-pressed=true]{border-color:#3457d5;background:#3457d5;color:#fff}",
    "button:focus-visible,textarea:focus-visible{outline:3px solid #f5a623;outline-offset:2px}",
    "label{display:block;font-size:14px;color:#5a6275;margin-bottom:6px}",
    "textarea{box-sizing:border-box;width:100%;min-height:84px;resize:vertical;padding:10px;",
    "border:1.5px solid #cfd4de;border-radius:10px;font:inherit;color:inherit}",
    ".row{display:flex;gap:8px;justify-content:flex-end;align-items:center;margin-top:10px}",
    ".count{flex:1;font-size:12px;color:#5a6275}",
    "button.primary,button.ghost{all:unset;box-sizing:border-box;cursor:pointer;min-height:42px;",
    "padding:9px 16px;border-radius:10px;font-weight:600;font-size:15px}",
    "button.primary{background:#3457d5;color:#fff}",
    "button.ghost{color:#3457d5}",
    ".error{color:#b3261e;font-size:14px;margin:10px 0 0}",
    ".thanks{font-size:18px;font-weight:650;margin:6px 0 4px;outline:none}",
    ".sub{margin:0;color:#5a6275;font-size:14px}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
  ].join("");

  var INVALID = "This survey link is not valid or has expired.";
  var RETRY_LATER = "Too many tries just now. Please try again in a minute.";
  var OFFLINE = "Couldn't load the survey. Check your connection and reload the page.";

  function apiBase(script) {
    var explicit = script.getAttribute("data-api");
    var base = explicit || script.src.replace(/static\/feedback\/widget[^/]*\.js(?:[?#].*)?$/, "");
    if (!explicit && base === script.src) base = new URL(script.src).origin + "/";
    return base.replace(/\/?$/, "/") + "api/v1/feedback/";
  }

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") el.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), attrs[k]);
      else el.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }

  function Widget(script) {
    this.token = script.getAttribute("data-token") || "";
    this.api = apiBase(script);
    this.uid = "olw" + Math.random().toString(36).slice(2, 8);
    var targetSel = script.getAttribute("data-target");
    var target = targetSel ? document.querySelector(targetSel) : null;
    this.host = document.createElement("div");
    this.host.setAttribute("data-offerlab-feedback", "");
    if (target) {
      target.appendChild(this.host);
    } else {
      this.host.setAttribute("data-floating", "");
      (document.body || document.documentElement).appendChild(this.host);
    }
    this.inline = !!target;
    this.root = this.host.attachShadow({ mode: "open" });
    this.root.appendChild(h("style", { text: STYLE }));
    this.card = h("section", { class: "card", "aria-label": "Feedback survey" });
    this.live = h("p", { class: "sr", "aria-live": "polite" });
    this.root.appendChild(this.card);
    this.root.appendChild(this.live);
    this.index = 0;
    this.draft = null; // an unsent text answer, flushed on pagehide
    var self = this;
    this.card.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && !self.inline) self.close();
    });
    window.addEventListener("pagehide", function () { self.flush(); });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") self.flush();
    });
  }

  Widget.prototype.request = function (method, path, body) {
    var init = { method: method, credentials: "omit", keepalive: method === "POST",
      headers: { Accept: "application/json" } };
    if (body) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(this.api + path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        return { status: r.status, data: data };
      });
    });
  };

  Widget.prototype.start = function () {
    var self = this;
    if (!this.token) return this.remove();
    this.request("GET", "surveys/" + encodeURIComponent(this.token)).then(function (res) {
      if (res.status === 429) return self.unavailable(RETRY_LATER);
      if (res.status !== 200) return self.unavailable(INVALID);
      self.survey = res.data;
      self.answers = res.data.answers || {};
      if (res.data.finished) return self.inline ? self.thanks(true) : self.remove();
      // Resume after the last question already answered.
      var qs = res.data.questions;
      while (self.index < qs.length && self.answers[qs[self.index].key] !== undefined) self.index++;
      if (self.index >= qs.length) self.index = qs.length - 1;
      self.render(false);
    }).catch(function () { self.unavailable(OFFLINE); });
  };

  Widget.prototype.header = function () {
    var self = this;
    var eyebrow = h("p", { class: "eyebrow", text: "Quick feedback on our suggestion" });
    if (this.survey && this.survey.about) {
      eyebrow.appendChild(h("span", { class: "about", text: this.survey.about }));
    }
    var kids = [eyebrow];
    if (!this.inline) {
      kids.push(h("button", { class: "close", type: "button", "aria-label": "Close survey",
        text: "×", onclick: function () { self.close(); } }));
    }
    return h("div", { class: "top" }, kids);
  };

  Widget.prototype.render = function (focus) {
    var q = this.survey.questions[this.index];
    var total = this.survey.questions.length;
    var qid = this.uid + "-q" + this.index;
    this.card.textContent = "";
    this.card.appendChild(this.header());
    this.card.appendChild(h("p", { class: "progress", text: "Question " + (this.index + 1) + " of " + total }));
    var title = h("h2", { id: qid, tabindex: "-1", text: q.text });
    this.card.appendChild(title);
    this.card.appendChild(this.control(q, qid));
    this.error = h("p", { class: "error", role: "alert" });
    this.card.appendChild(this.error);
    if (focus) title.focus();
  };

  Widget.prototype.control = function (q, qid) {
    var self = this;
    var current = this.answers[q.key];
    function option(label, value, aria) {
      var attrs = { class: "opt", type: "button", "aria-pressed": String(current === value),
        text: label, onclick: function () { self.answer(q, value); } };
      if (aria) attrs["aria-label"] = aria;
      return h("button", attrs);
    }
    if (q.type === "rating") {
      var buttons = [1, 2, 3, 4, 5].map(function (n) {
        var extra = n === 1 && q.low_label ? ", " + q.low_label : n === 5 && q.high_label ? ", " + q.high_label : "";
        return option(String(n), n, n + " out of 5" + extra);
      });
      var wrap = h("div", {}, [h("div", { class: "scale", role: "group", "aria-labelledby": qid }, buttons)]);
      if (q.low_label || q.high_label) {
        wrap.appendChild(h("div", { class: "ends", "aria-hidden": "true" },
          [h("span", { text: q.low_label || "" }), h("span", { text: q.high_label || "" })]));
      }
      return wrap;
    }
    if (q.type === "yes_no") {
      return h("div", { class: "choices two", role: "group", "aria-labelledby": qid },
        [option("Yes", true), option("No", false)]);
    }
    if (q.type === "single_choice") {
      return h("div", { class: "choices", role: "group", "aria-labelledby": qid },
        q.choices.map(function (c) { return option(c, c); }));
    }
    var areaId = qid + "-text";
    var countId = qid + "-count";
    var area = h("textarea", { id: areaId, maxlength: "2000", "aria-describedby": countId });
    area.value = typeof current === "string" ? current : "";
    var count = h("span", { class: "count", id: countId });
    function updateCount() {
      count.textContent = area.value.length + " / 2000";
      self.draft = area.value.trim() ? { key: q.key, value: area.value } : null;
    }
    area.addEventListener("input", updateCount);
    updateCount();
    self.draft = null;
    return h("div", {}, [
      h("label", { for: areaId, text: "Your answer (optional)" }),
      area,
      h("div", { class: "row" }, [
        count,
        h("button", { class: "ghost", type: "button", text: "Skip",
          onclick: function () { self.answer(q, null); } }),
        h("button", { class: "primary", type: "button", text: "Send",
          onclick: function () { self.answer(q, area.value.trim() || null); } }),
      ]),
    ]);
  };

  Widget.prototype.answer = function (q, value) {
    var self = this;
    var last = this.index === this.survey.questions.length - 1;
    var body = { token: this.token, answers: {}, complete: last };
    if (value !== null) body.answers[q.key] = value;
    if (this.busy) return;
    this.draft = null;
    if (value === null && !last) {
      // Skipping a middle question saves nothing; move on.
      this.index++;
      return this.render(true);
    }
    this.busy = true;
    if (value !== null) {
      this.answers[q.key] = value;
    }
    this.request("POST", "responses", body).then(function (res) {
      self.busy = false;
      if (res.status === 200 || res.status === 409) {
        if (last || res.status === 409) return self.thanks(false);
        self.index++;
        self.live.textContent = "Saved. Question " + (self.index + 1) + " of " + self.survey.questions.length;
        return self.render(true);
      }
      if (res.status === 403) return self.unavailable(INVALID);
      if (res.status === 429) {
        self.error.textContent = RETRY_LATER;
        return;
      }
      var detail = res.data && res.data.answers && res.data.answers[q.key];
      self.error.textContent = detail ? detail[0] : "Sorry, that didn't save. Please try again.";
    }).catch(function () {
      self.busy = false;
      self.error.textContent = "Sorry, that didn't save. Check your connection and try again.";
    });
  };

  // A typed comment the customer never sent: save it as a partial answer as the page goes away.
  Widget.prototype.flush = function () {
    if (!this.draft || this.done) return;
    var answers = {};
    answers[this.draft.key] = this.draft.value;
    var payload = JSON.stringify({ token: this.token, answers: answers, complete: false });
    this.draft = null;
    // text/plain keeps the beacon a "simple" request: no CORS preflight that could be cut off.
    if (navigator.sendBeacon) {
      navigator.sendBeacon(this.api + "responses", new Blob([payload], { type: "text/plain" }));
    }
  };

  Widget.prototype.thanks = function (already) {
    this.done = true;
    this.card.textContent = "";
    this.card.appendChild(this.header());
    var msg = h("p", { class: "thanks", tabindex: "-1", role: "status",
      text: already ? "You have already answered. Thank you!" : "Thank you!" });
    this.card.appendChild(msg);
    this.card.appendChild(h("p", { class: "sub", text: "Your answers help us suggest things you actually want." }));
    msg.focus();
    var self = this;
    if (!this.inline) setTimeout(function () { self.remove(); }, 6000);
  };

  Widget.prototype.unavailable = function (message) {
    if (!this.inline) return this.remove();
    this.card.textContent = "";
    this.card.appendChild(h("p", { class: "thanks", role: "alert", text: message }));
  };

  Widget.prototype.close = function () {
    this.flush();
    this.remove();
  };

  Widget.prototype.remove = function () {
    if (this.host.parentNode) this.host.parentNode.removeChild(this.host);
  };

  function boot() {
    var scripts = document.querySelectorAll("script[data-token][src*='feedback/widget']");
    Array.prototype.forEach.call(scripts, function (s) {
      if (s.hasAttribute("data-offerlab-started")) return;
      s.setAttribute("data-offerlab-started", "");
      new Widget(s).start();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
