/* supportbot agent-assist panel: /assist#key=sb_... (or type the key). Works on its own or in a
 * helpdesk iframe; with #parent=https://helpdesk.example the sent reply is also posted to that
 * window (postMessage {type: "supportbot:reply", text}).
 *
 * Drafts, citations, sources and past answers come from documents and a model: they are inserted as
 * text only (textContent, createElement) and links only with http(s) URLs.
 */
(function () {
  "use strict";

  var SESSION_KEY = "supportbot:assist-key";
  var fragment = new URLSearchParams(window.location.hash.slice(1));
  var key = fragment.get("key") || sessionStorageGet();
  var parentOrigin = originOf(fragment.get("parent"));
  if (fragment.get("key")) {
    sessionStorageSet(fragment.get("key"));
    history.replaceState(null, "", window.location.pathname + window.location.search);  // keep the key out of view
  }

  var $ = function (id) { return document.getElementById(id); };
  var turnId = null;

  function sessionStorageGet() {
    try { return window.sessionStorage.getItem(SESSION_KEY); } catch (e) { return null; }
  }

  function sessionStorageSet(value) {
    try { window.sessionStorage.setItem(SESSION_KEY, value); } catch (e) { /* the key lasts as long as the page */ }
  }

  function originOf(value) {
    if (!value) return null;
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.origin : null;
    } catch (e) { return null; }
  }

  function safeUrl(value, page) {
    if (typeof value !== "string" || !value) return null;
    var url;
    try { url = new URL(value); } catch (e) { return null; }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    if (page && !url.hash && /\.pdf$/i.test(url.pathname)) url.hash = "page=" + Number(page);
    return url.href;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setStatus(text) { $("status").textContent = text || ""; }

  function post(path, body) {
    return fetch(path, {
      method: "POST", credentials: "omit",
      headers: { "Authorization": "Bearer " + key, "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error((data.error && data.error.message) || "request failed (" + response.status + ")");
        return data;
      });
    });
  }

  /* A source entry: a link when it has an http(s) URL, otherwise its passage in a details element. */
  function sourceItem(name, url, page, passage) {
    var item = el("li");
    var href = safeUrl(url, page);
    if (href) {
      item.appendChild(el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, name));
      if (passage) item.appendChild(el("blockquote", {}, passage));
    } else {
      var details = el("details");
      details.append(el("summary", {}, name), el("blockquote", {}, passage || ""));
      item.appendChild(details);
    }
    return item;
  }

  function label(title, source, page) {
    return (title || source || "source") + (page ? " (page " + page + ")" : "");
  }

  function render(data) {
    turnId = data.turn_id;
    $("draft").value = data.draft;
    $("grounding").textContent = data.abstained
      ? "No grounded answer was found: write this one yourself."
      : (data.grounded ? "Every cited sentence is supported by its source." : "Check the draft: not every sentence is supported.");
    $("citations").replaceChildren.apply($("citations"), data.citations.map(function (c) {
      return sourceItem("[" + c.number + "] " + label(c.title, c.source, c.page), c.url, c.page, c.snippet);
    }));
    $("sources").replaceChildren.apply($("sources"), data.sources.map(function (s) {
      return sourceItem(label(s.title, s.source, s.page), s.url, s.page, s.content);
    }));
    var similar = data.similar.map(function (s) {
      var item = el("li");
      var details = el("details");
      details.append(el("summary", {}, s.question), el("blockquote", {}, s.answer));
      item.appendChild(details);
      return item;
    });
    if (!similar.length) similar = [el("li", {}, "None found.")];
    $("similar").replaceChildren.apply($("similar"), similar);
    $("send-button").disabled = false;
    $("result").hidden = false;
    $("draft").focus();
  }

  function showTicketForm() {
    $("key-form").hidden = true;
    $("ticket-form").hidden = false;
    $("subject").focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!key) {
      $("key-form").hidden = false;
      $("ticket-form").hidden = true;
      $("key").focus();
    }

    $("key-form").addEventListener("submit", function (event) {
      event.preventDefault();
      key = $("key").value.trim();
      if (!key) return;
      sessionStorageSet(key);
      showTicketForm();
    });

    $("ticket-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var button = $("draft-button");
      button.disabled = true;
      setStatus("Drafting a reply\u2026");
      post("/v1/assist", { subject: $("subject").value, body: $("body").value }).then(function (data) {
        render(data);
        setStatus("Draft ready. Edit it, then send.");
      }, function (error) { setStatus(error.message); }).then(function () { button.disabled = false; });
    });

    $("send-button").addEventListener("click", function () {
      var text = $("draft").value.trim();
      if (!turnId || !text) return;
      var button = $("send-button");
      button.disabled = true;
      post("/v1/assist/" + encodeURIComponent(turnId) + "/sent", { final_text: text }).then(function () {
        if (parentOrigin && window.parent !== window) {
          window.parent.postMessage({ type: "supportbot:reply", text: text }, parentOrigin);
        }
        setStatus("Reply sent and saved as the corrected answer.");
      }, function (error) {
        button.disabled = false;
        setStatus(error.message);
      });
    });
  });
})();
