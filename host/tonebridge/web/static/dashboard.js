// tonebridge dashboard: live updates by server-sent events (/ui/events), the send form.
// No build step, no framework: plain DOM.
"use strict";
(function () {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const streamState = document.getElementById("stream-state");
  const $ = (sel, root) => (root || document).querySelector(sel);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // ---- live progress -----------------------------------------------------------------
  function sequenceBlock(data) {
    const list = document.getElementById("progress-" + data.device);
    if (!list) return null;
    let block = list.querySelector('[data-rid="' + CSS.escape(data.rid) + '"]');
    if (!block) {
      block = el("li", "seq");
      block.dataset.rid = data.rid;
      block.append(el("code", "text", data.text || ""), " ");
      const digits = el("span", "digits");
      block.append(digits, " ", el("span", "count", ""), " ", el("span", "outcome", ""));
      list.prepend(block);
    }
    if (data.total !== undefined && data.total !== null) block.dataset.total = data.total;
    return block;
  }

  function onDigit(data) {
    const block = sequenceBlock(data);
    if (!block) return;
    const digits = $(".digits", block);
    let d = digits.querySelector('[data-index="' + data.index + '"]');
    if (!d) {
      d = el("span", "digit", data.key);
      d.dataset.index = data.index;
      // keep index order whatever order events arrive in
      const after = [...digits.children].find((c) => Number(c.dataset.index) > data.index);
      digits.insertBefore(d, after || null);
    }
    if (data.state === "heard") {
      d.classList.add("heard"); // the board heard it on its line (verified send)
    } else {
      d.classList.toggle("playing", data.state === "started");
    }
    if (data.state === "finished") {
      d.classList.add("played");
      d.dataset.at = String(performance.now());
    }
    showCount(block, digits.querySelectorAll(".played").length, block.dataset.total || "?");
  }

  // "N of M played", and ", K heard" once the board has heard digits on its line
  function showCount(block, played, total) {
    const heard = $(".digits", block).querySelectorAll(".heard").length;
    $(".count", block).textContent =
      played + " of " + total + " played" + (heard ? ", " + heard + " heard" : "");
  }

  function onSequence(data) {
    const block = sequenceBlock(data);
    if (!block) return;
    block.classList.add(data.outcome ? "failed" : "done");
    showCount(block, data.played, data.total);
    $(".outcome", block).textContent = data.outcome ? "failed: " + data.outcome : "done";
  }

  function onRecorded(data) {
    if (document.body.dataset.page === "call") return;
    const list = document.getElementById("progress-" + data.device);
    if (!list) return;
    // the newest sequence of that call whose recording is not linked yet
    const block = [...list.querySelectorAll(".seq")].find((b) => !$(".recording-link", b));
    if (!block) return;
    const a = el("a", "recording-link", "recording #" + data.number);
    a.href = data.href;
    block.append(" ", a);
  }

  function onLine(data) {
    const row = document.getElementById("line-" + data.device);
    if (!row) return;
    const link = $('[data-field="link"]', row);
    link.textContent = data.link + (data.fault ? ": " + data.fault : "");
    link.className = "link link-" + data.link;
    $('[data-field="hook"]', row).textContent = data.hook;
    if (data.hwid) $('[data-field="hwid"]', row).textContent = data.hwid;
    if (data.port) $('[data-field="port"]', row).textContent = data.port;
  }

  function onCall(data) {
    document.querySelectorAll('.call-state[data-call="' + CSS.escape(data.call) + '"]')
      .forEach((c) => { c.textContent = data.state; });
  }

  const callPage = document.body.dataset.call;
  function connect() {
    const source = new EventSource("/ui/events");
    source.addEventListener("open", () => {
      if (streamState) { streamState.textContent = "● live"; streamState.className = "stream up"; }
    });
    source.addEventListener("error", () => {
      if (streamState) { streamState.textContent = "○ reconnecting"; streamState.className = "stream down"; }
    });
    const on = (name, fn) => source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    on("digit", onDigit);
    on("sequence", onSequence);
    on("recorded", (d) => {
      if (callPage && d.call === callPage) { window.location.reload(); return; }
      onRecorded(d);
    });
    on("line", onLine);
    on("call", onCall);
  }
  if (streamState) connect();

  // ---- the send form -----------------------------------------------------------------
  function showError(section, text, body) {
    const box = $(".send-error", section);
    box.hidden = false;
    $(".message", box).textContent = body.message || "error";
    const shown = $(".shown", box);
    shown.textContent = "";
    const pos = body.position;
    if (typeof pos === "number" && pos >= 0 && pos < text.length) {
      shown.append(text.slice(0, pos));
      const bad = el("mark", "bad-char", text[pos]);
      bad.dataset.position = pos;
      shown.append(bad, text.slice(pos + 1));
      const input = $(".digits", section);
      input.focus();
      input.setSelectionRange(pos, pos + 1);
    } else {
      shown.append(text);
    }
  }

  document.querySelectorAll(".send-form").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const section = form.closest("section");
      const text = $(".digits", form).value;
      const body = { digits: text, dialect: $(".dialect", form).value };
      const tone = $(".tone", form).value, gap = $(".gap", form).value;
      if (tone !== "") body.toneDuration = Number(tone);
      if (gap !== "") body.toneInterval = Number(gap);
      $(".send-error", section).hidden = true;
      const button = $(".send-button", form);
      button.disabled = true;
      try {
        const resp = await fetch("/ui/calls/" + encodeURIComponent(form.dataset.call) + "/send", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-TOKEN": csrf },
          body: JSON.stringify(body),
        });
        const answer = await resp.json().catch(() => ({ message: "HTTP " + resp.status }));
        if (!resp.ok) {
          showError(section, text, answer);
        } else {
          sequenceBlock({ device: form.dataset.device, rid: answer.requestId, text: text,
                          total: answer.total });
        }
      } catch (e) {
        showError(section, text, { message: String(e) });
      } finally {
        button.disabled = false;
      }
    });
  });
})();
