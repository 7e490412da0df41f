/* Twinsite's "Ask my twin" widget: one static file, no build step.

   <script src="https://twinsite.example/static/widget/twin-widget.js" data-twin-key="tww_..." async></script>

   It renders its box in a shadow root where the script tag stands, and talks to the site that served
   it (/widget/<key>/...) with no cookie at all (credentials: "omit"; EventSource without credentials):
   the owner's session on that site is never sent. The visitor is a random id kept in this page's
   localStorage, the only key to the visitor's own conversation. Requests are "simple" (text/plain
   JSON, GET with a query), so the browser needs no preflight; the site answers only the origins
   the twin's owner allowed. Text is always set as text, never as HTML. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.getAttribute("data-twin-key")) return;
  var key = script.getAttribute("data-twin-key");
  var base = new URL(script.src, document.baseURI).origin + "/widget/" + encodeURIComponent(key) + "/";
  var STORAGE = "twinsite-visitor";
  var ID = /^[A-Za-z0-9_-]{16,64}$/;

  function visitorId() {
    var id = null;
    try { id = window.localStorage.getItem(STORAGE); } catch (e) { /* storage blocked: one id per page view */ }
    if (!id || !ID.test(id)) {
      var bytes = new Uint8Array(18);
      window.crypto.getRandomValues(bytes);
      id = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      try { window.localStorage.setItem(STORAGE, id); } catch (e) { /* ignored */ }
    }
    return id;
  }

  var visitor = visitorId();
  var conversation = null;
  var host = document.createElement("div");
  host.className = "twinsite-widget";
  script.parentNode.insertBefore(host, script);
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" +
    ":host{all:initial;display:block;font:15px/1.5 system-ui,sans-serif;color:#1d2330;max-width:520px}" +
    ".box{border:1px solid #e4e7ec;border-radius:10px;background:#fff;padding:.8rem}" +
    "h2{font-size:1.05rem;margin:0 0 .5rem}.log{max-height:420px;overflow:auto}" +
    ".q,.a{padding:.45rem .6rem;border-radius:8px;margin:.35rem 0;white-space:pre-wrap}" +
    ".q{background:#e7f5ff;margin-left:15%}.a{background:#f8f9fb}" +
    ".src{font-size:.8rem;color:#667085}.status{font-size:.85rem;color:#c92a2a;min-height:1.2em}" +
    "form{display:flex;gap:.4rem;margin-top:.5rem}textarea{flex:1;font:inherit;padding:.4rem;border:1px solid #e4e7ec;border-radius:6px}" +
    "button{font:inherit;border:0;border-radius:6px;background:#3b5bdb;color:#fff;padding:.4rem .9rem;cursor:pointer}" +
    "</style>" +
    '<div class="box"><h2 class="title">Ask my twin</h2><div class="log" aria-live="polite"></div>' +
    '<div class="status" role="status"></div>' +
    '<form><textarea name="message" rows="2" maxlength="2000" placeholder="Ask a question"></textarea>' +
    '<button type="submit">Ask</button></form></div>';
  var log = root.querySelector(".log");
  var status = root.querySelector(".status");
  var form = root.querySelector("form");
  var input = form.querySelector("textarea");

  function bubble(kind, text) {
    var el = document.createElement("div");
    el.className = kind;
    var body = document.createElement("div");
    body.className = "text";
    body.textContent = text || "";
    el.appendChild(body);
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }

  function showSources(el, sources) {
    if (!sources || !sources.length) return;
    var line = document.createElement("div");
    line.className = "src";
    line.textContent = "Sources: " + sources.map(function (s) { return s.title; }).join("; ");
    el.appendChild(line);
  }

  function say(text) { status.textContent = text || ""; }

  function refusal(response) {
    return response.json().then(
      function (data) { return data.detail || "The twin could not answer."; },
      function () { return "The twin could not answer (" + response.status + ")."; }
    );
  }

  function follow(url, el) {
    var text = el.querySelector(".text");
    var source = new EventSource(new URL(url, base).href); // never with credentials
    var end = function (message) { source.close(); form.querySelector("button").disabled = false; say(message); };
    source.addEventListener("queue", function (e) {
      var place = JSON.parse(e.data); // 0: it has left the line
      say(place > 0 ? (place === 1 ? "Next in line…" : "Waiting: " + place + " in line…") : "");
    });
    source.addEventListener("sources", function (e) { showSources(el, JSON.parse(e.data)); });
    source.addEventListener("token", function (e) { text.textContent += JSON.parse(e.data); });
    source.addEventListener("grounding", function (e) { text.textContent = JSON.parse(e.data).content; });
    source.addEventListener("done", function (e) { text.textContent = JSON.parse(e.data).content; el.dataset.done = "1"; end(""); });
    source.addEventListener("error", function (e) { end(e.data ? JSON.parse(e.data) : "The answer was interrupted."); });
    source.addEventListener("revoked", function (e) { end(JSON.parse(e.data)); });
  }

  function streamUrl(answerId) {
    return base + "messages/" + answerId + "/stream/?visitor=" + encodeURIComponent(visitor);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var message = input.value.trim();
    if (!message) return;
    say("");
    form.querySelector("button").disabled = true;
    fetch(base + "ask/", {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: JSON.stringify({ visitor: visitor, message: message, conversation: conversation }),
    }).then(function (response) {
      if (!response.ok) {
        return refusal(response).then(function (detail) { form.querySelector("button").disabled = false; say(detail); });
      }
      return response.json().then(function (data) {
        conversation = data.conversation;
        input.value = "";
        bubble("q", message);
        follow(data.stream, bubble("a", ""));
      });
    }).catch(function () {
      form.querySelector("button").disabled = false;
      say("The twin cannot be reached from this page.");
    });
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });

  fetch(base + "conversation/?visitor=" + encodeURIComponent(visitor), { credentials: "omit" })
    .then(function (response) {
      if (!response.ok) return refusal(response).then(say);
      return response.json().then(function (data) {
        root.querySelector(".title").textContent = "Ask " + data.twin + "'s twin";
        conversation = data.conversation;
        data.messages.forEach(function (m) {
          var el = bubble(m.role === "user" ? "q" : "a", m.content);
          if (m.role !== "user") {
            showSources(el, m.sources);
            if (m.status === "pending" || m.status === "streaming") { el.querySelector(".text").textContent = ""; follow(streamUrl(m.id), el); }
          }
        });
      });
    })
    .catch(function () { say("The twin cannot be reached from this page."); });
})();
