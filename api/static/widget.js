/* supportbot web chat widget.
 *
 * Embed with one tag, with a public key (`supportbot keys create --tenant T --public`):
 *   <script src="https://support.example.com/widget.js" data-api-key="sbp_..." data-color="#0b5fff"
 *           data-title="Acme support" defer></script>
 * Anyone can read the key in the page source; a public key may only do what this widget does (chat on
 * the web channel, feedback, handoff, restoring its conversation).
 *
 * Safety rule of this file: answers, citations and snippets come from documents and a model, so they
 * are inserted only as text (textContent, createElement) and links only with http(s) URLs.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__supportbotWidget) return;
  window.__supportbotWidget = true;

  var API = new URL(script.src, document.baseURI).origin;
  var KEY = script.getAttribute("data-api-key") || "";
  var TITLE = script.getAttribute("data-title") || "Support";
  var COLOR = script.getAttribute("data-color") || "";
  var STORAGE = "supportbot:conversation:" + KEY.slice(0, 12);
  if (KEY.indexOf("sbp_") !== 0 && window.console) {
    console.warn("supportbot widget: data-api-key is not a public key (sbp_...). Anyone can read it in this " +
                 "page's source; create one with `supportbot keys create --tenant T --public`.");
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /* An absolute http(s) URL, or null: javascript:, data:, relative paths and the like are refused. */
  function safeUrl(value, page) {
    if (typeof value !== "string" || !value) return null;
    var url;
    try { url = new URL(value); } catch (e) { return null; }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    if (page && !url.hash && /\.pdf$/i.test(url.pathname)) url.hash = "page=" + Number(page);
    return url.href;
  }

  function storedConversation() {
    try { return window.localStorage.getItem(STORAGE); } catch (e) { return null; }
  }

  function storeConversation(id) {
    try {
      if (id) window.localStorage.setItem(STORAGE, id); else window.localStorage.removeItem(STORAGE);
    } catch (e) { /* storage disabled: the conversation lasts as long as the page */ }
  }

  function api(path, options) {
    options = options || {};
    var headers = { "Authorization": "Bearer " + KEY };
    if (options.body) headers["Content-Type"] = "application/json";
    if (options.accept) headers["Accept"] = options.accept;
    return fetch(API + path, {
      method: options.method || "GET", headers: headers, mode: "cors", credentials: "omit",
      body: options.body ? JSON.stringify(options.body) : undefined
    });
  }

  function errorMessage(response) {
    return response.json().then(function (body) {
      return (body && body.error && body.error.message) || ("request failed (" + response.status + ")");
    }, function () { return "request failed (" + response.status + ")"; });
  }

  /* ---- the DOM ---- */

  var link = el("link", { rel: "stylesheet", href: API + "/widget.css" });
  document.head.appendChild(link);

  var root = el("div", { "class": "sbw-root", "data-supportbot-widget": "" });
  if (COLOR && window.CSS && CSS.supports("color", COLOR)) root.style.setProperty("--sbw-color", COLOR);

  var launcher = el("button", { type: "button", "class": "sbw-launcher", "aria-expanded": "false",
                                "aria-controls": "sbw-panel" }, "Chat with " + TITLE);
  var panel = el("section", { id: "sbw-panel", "class": "sbw-panel", role: "dialog", "aria-label": TITLE + " chat",
                              hidden: "" });
  var header = el("div", { "class": "sbw-header" });
  var heading = el("h2", { "class": "sbw-title" }, TITLE);
  var newChat = el("button", { type: "button", "class": "sbw-small" }, "New chat");
  var close = el("button", { type: "button", "class": "sbw-small", "aria-label": "Close chat" }, "\u00d7");
  header.append(heading, newChat, close);

  var log = el("div", { "class": "sbw-log", role: "log", "aria-live": "polite", "aria-relevant": "additions text",
                        "aria-label": "Conversation" });
  var status = el("p", { "class": "sbw-status", role: "status", "aria-live": "polite" });

  var form = el("form", { "class": "sbw-form" });
  var label = el("label", { "for": "sbw-input", "class": "sbw-visually-hidden" }, "Your question");
  var input = el("textarea", { id: "sbw-input", "class": "sbw-input", rows: "2", maxlength: "2000",
                               placeholder: "Ask a question\u2026", autocomplete: "off" });
  var send = el("button", { type: "submit", "class": "sbw-send" }, "Send");
  form.append(label, input, send);
  var handoff = el("button", { type: "button", "class": "sbw-handoff" }, "Talk to a person");

  panel.append(header, log, status, form, handoff);
  root.append(launcher, panel);

  var conversationId = storedConversation();
  var busy = false;

  function setStatus(text) { status.textContent = text || ""; }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    input.focus();
  }

  function shut() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) open(); else shut(); });
  close.addEventListener("click", shut);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") shut(); });
  newChat.addEventListener("click", function () {
    conversationId = null;
    storeConversation(null);
    log.replaceChildren();
    setStatus("Started a new conversation.");
    input.focus();
  });

  /* ---- messages ---- */

  function addUser(text) {
    var item = el("div", { "class": "sbw-msg sbw-user" });
    item.append(el("span", { "class": "sbw-visually-hidden" }, "You: "), el("p", { "class": "sbw-text" }, text));
    log.appendChild(item);
    scrollDown();
  }

  function addNotice(text) {
    log.appendChild(el("p", { "class": "sbw-notice" }, text));
    scrollDown();
  }

  function addBot() {
    var item = el("div", { "class": "sbw-msg sbw-bot", "aria-busy": "true" });
    item.append(el("span", { "class": "sbw-visually-hidden" }, TITLE + ": "));
    var text = el("p", { "class": "sbw-text" });
    item.appendChild(text);
    log.appendChild(item);
    scrollDown();
    return { item: item, text: text };
  }

  function renderCitations(citations) {
    var list = el("ol", { "class": "sbw-citations", "aria-label": "Sources" });
    (citations || []).forEach(function (citation) {
      var entry = el("li", { "class": "sbw-citation" });
      var name = "[" + citation.number + "] " + (citation.title || citation.source || "source") +
                 (citation.page ? " (page " + citation.page + ")" : "");
      var href = safeUrl(citation.url, citation.page);
      if (href) {
        var anchor = el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, name);
        if (citation.snippet) anchor.title = citation.snippet;
        entry.appendChild(anchor);
      } else {
        var details = el("details", {});
        details.append(el("summary", {}, name), el("blockquote", { "class": "sbw-snippet" }, citation.snippet || ""));
        entry.appendChild(details);
      }
      list.appendChild(entry);
    });
    return list;
  }

  function renderFeedback(turnId, rating) {
    var group = el("div", { "class": "sbw-feedback", role: "group", "aria-label": "Was this helpful?" });
    var up = el("button", { type: "button", "class": "sbw-small", "aria-label": "Helpful",
                            "aria-pressed": String(rating === "up") }, "\ud83d\udc4d");
    var down = el("button", { type: "button", "class": "sbw-small", "aria-label": "Not helpful",
                              "aria-pressed": String(rating === "down") }, "\ud83d\udc4e");
    function rate(value) {
      api("/v1/feedback", { method: "POST", body: { turn_id: turnId, rating: value } }).then(function (response) {
        if (!response.ok) return errorMessage(response).then(setStatus);
        up.setAttribute("aria-pressed", String(value === "up"));
        down.setAttribute("aria-pressed", String(value === "down"));
        setStatus("Thanks for your feedback.");
      }, function () { setStatus("Could not send your feedback. Please try again."); });
    }
    up.addEventListener("click", function () { rate("up"); });
    down.addEventListener("click", function () { rate("down"); });
    group.append(up, down);
    return group;
  }

  function finishBot(bot, answer) {
    bot.text.textContent = answer.answer;
    if (answer.citations && answer.citations.length) bot.item.appendChild(renderCitations(answer.citations));
    if (answer.abstained) {
      bot.item.appendChild(el("p", { "class": "sbw-notice" }, "A person from our team can help with this."));
    }
    if (answer.turn_id) {
      bot.item.setAttribute("data-turn-id", answer.turn_id);
      bot.item.appendChild(renderFeedback(answer.turn_id, answer.rating || null));
    }
    bot.item.setAttribute("aria-busy", "false");
    scrollDown();
  }

  /* ---- asking, with the answer streamed as server-sent events ---- */

  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          var block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          var name = "message";
          var data = [];
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event:") === 0) name = line.slice(6).trim();
            else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
          });
          if (data.length) onEvent(name, JSON.parse(data.join("\n")));
        }
        return pump();
      });
    }
    return pump();
  }

  function ask(message, retried) {
    var bot = addBot();
    var finished = false;
    var body = { message: message, channel: "web" };
    if (conversationId) body.conversation_id = conversationId;
    return api("/v1/chat", { method: "POST", body: body, accept: "text/event-stream" }).then(function (response) {
      if (response.status === 404 && conversationId && !retried) {
        // The stored conversation is gone (or belongs elsewhere): start a new one.
        bot.item.remove();
        conversationId = null;
        storeConversation(null);
        return ask(message, true);
      }
      if (!response.ok) {
        return errorMessage(response).then(function (text) {
          bot.text.textContent = text;
          bot.item.classList.add("sbw-error");
          bot.item.setAttribute("aria-busy", "false");
          finished = true;
        });
      }
      return readEvents(response, function (name, data) {
        if (name === "token") {
          bot.text.textContent += data.text;
          scrollDown();
        } else if (name === "answer") {
          finished = true;
          conversationId = data.conversation_id;
          storeConversation(conversationId);
          finishBot(bot, data);
        } else if (name === "error") {
          finished = true;
          bot.text.textContent = (data.error && data.error.message) || "Something went wrong.";
          bot.item.classList.add("sbw-error");
          bot.item.setAttribute("aria-busy", "false");
        }
      });
    }).then(function () {
      if (!finished) throw new Error("the answer stream ended early");
    }).catch(function () {
      bot.text.textContent = "Sorry, the answer could not be loaded. Please try again.";
      bot.item.classList.add("sbw-error");
      bot.item.setAttribute("aria-busy", "false");
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var message = input.value.trim();
    if (!message || busy) return;
    busy = true;
    send.disabled = true;
    input.value = "";
    addUser(message);
    setStatus("Answering\u2026");
    ask(message).then(function () {
      busy = false;
      send.disabled = false;
      setStatus("");
      input.focus();
    });
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  handoff.addEventListener("click", function () {
    var body = { channel: "web" };
    if (conversationId) body.conversation_id = conversationId;
    handoff.disabled = true;
    api("/v1/handoff", { method: "POST", body: body }).then(function (response) {
      if (!response.ok) return errorMessage(response).then(setStatus);
      return response.json().then(function (data) {
        conversationId = data.conversation_id;
        storeConversation(conversationId);
        addNotice("We have asked a person from our team to take over this conversation.");
        setStatus("A person has been asked to help.");
      });
    }, function () { setStatus("Could not reach a person. Please try again."); }).then(function () {
      handoff.disabled = false;
    });
  });

  /* ---- the conversation survives a reload ---- */

  function restore() {
    if (!conversationId) return;
    api("/v1/conversations/" + encodeURIComponent(conversationId)).then(function (response) {
      if (response.status === 404) { conversationId = null; storeConversation(null); return; }
      if (!response.ok) return;
      return response.json().then(function (conversation) {
        (conversation.turns || []).forEach(function (turn) {
          addUser(turn.question);
          var bot = addBot();
          if (turn.status === "answered") {
            finishBot(bot, { answer: turn.answer || "", citations: turn.citations, abstained: turn.abstained,
                             turn_id: turn.id, rating: turn.feedback ? turn.feedback.rating : null });
          } else {
            bot.text.textContent = "(no answer)";
            bot.item.setAttribute("aria-busy", "false");
          }
        });
        if (conversation.handoff) addNotice("This conversation has been handed to a person.");
      });
    }, function () { setStatus("Could not load the earlier conversation."); });
  }

  function mount() {
    document.body.appendChild(root);
    restore();
    if (script.getAttribute("data-open") === "true") open();
  }

  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
