// The demo chat: one wsgate-client connection (JSON encoding, so no
// MessagePack file is needed), one subscription at a time, messages as
// JSON values {name, text}.

import { Client, ErrorCode } from "./wsgate-client/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const wsPath = params.get("ws") ?? "/ws";
$("channel").value = params.get("channel") ?? $("channel").value;
$("name").value = params.get("name") ?? `guest-${Math.floor(Math.random() * 9000 + 1000)}`;

const client = new Client(wsPath, {
  encoding: "json",
  dataFormat: "json",
  backoff: { min: 300, max: 5000 },
});
let sub = null;
let reconnects = 0;
let replayed = 0;
let replayUpTo = 0; // after a recovered resume: offsets up to this one are replays

function setState(state, detail = "") {
  const el = $("state");
  el.dataset.state = state;
  el.textContent = detail ? `${state} · ${detail}` : state;
}

function note(text, warn = false) {
  const li = document.createElement("li");
  li.className = warn ? "note warn" : "note";
  li.textContent = text;
  append(li);
}

function append(li, atTop = false) {
  const list = $("messages");
  const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  if (atTop) list.prepend(li);
  else list.append(li);
  if (stick && !atTop) list.scrollTop = list.scrollHeight;
}

function message({ offset, data }, how = "") {
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.offset = String(offset);
  const value = data && typeof data === "object" ? data : { name: "?", text: String(data) };
  if (value.name === $("name").value) li.classList.add("mine");
  if (how) li.classList.add(how);
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = value.name ?? "?";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = value.text ?? "";
  const off = document.createElement("span");
  off.className = "off";
  off.textContent = `#${offset}`;
  li.append(who, text, off);
  return li;
}

client.on("connecting", (e) => {
  if (e.code === 0 && e.attempt === 0) {
    setState("connecting");
    return;
  }
  setState("connecting", `retry in ${(e.delay / 1000).toFixed(1)} s`);
  if (e.attempt === 1) note(`connection lost (${e.reason}); reconnecting…`, true);
});
client.on("connected", () => {
  setState("connected");
  if (reconnects++ > 0) $("reconnects").textContent = String(reconnects - 1);
});
client.on("disconnected", (e) => {
  setState("disconnected");
  if (e.error) note(`stopped: ${e.error.message}`, true);
});
client.on("error", (err) => console.warn("wsgate:", err));

function join(channel) {
  if (sub) sub.unsubscribe().catch(() => {});
  $("messages").replaceChildren();
  replayUpTo = 0;
  const s = client.subscribe(channel);
  sub = s;
  let first = true;
  s.on("subscribed", async (e) => {
    if (first) {
      first = false;
      note(`joined ${channel}`);
      // The recent past, up to the top the subscribe reply named; live
      // messages come after it, so nothing shows twice.
      if (e.offset > 0) {
        try {
          const h = await client.history(channel, { limit: 20, reverse: true });
          for (const p of h.publications) if (p.offset <= e.offset) append(message(p, "old"), true);
        } catch (err) {
          note(`history unavailable: ${err.message}`);
        }
      }
      return;
    }
    if (e.recovered) {
      // The position is still the last message seen: the replay follows.
      replayUpTo = e.offset;
      const missed = e.offset - s.position.offset;
      note(missed > 0 ? `resumed: ${missed} missed message${missed === 1 ? "" : "s"} replayed` : "resumed: nothing missed");
    }
  });
  s.on("message", (p) => {
    const isReplay = p.offset > 0 && p.offset <= replayUpTo;
    if (isReplay) {
      replayed++;
      $("replayed").textContent = String(replayed);
    }
    append(message(p, isReplay ? "replayed" : ""));
  });
  s.on("lost", (e) => {
    if (e.kind === "gap") note(`messages #${e.from}–#${e.to} were lost on the way`, true);
    else if (e.kind === "epoch") note("the channel's history was reset: earlier messages are gone", true);
    else note(`could not replay what was missed (${e.reason}): messages sent meanwhile are gone`, true);
  });
  s.on("error", (err) => note(`subscribe failed: ${err.message}`, true));
}

$("join").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if ($("channel").value !== sub?.channel) join($("channel").value);
});

$("send").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("text").value.trim();
  if (!text || !sub) return;
  $("text").value = "";
  try {
    // A key makes the send safe to retry across reconnects: published once.
    await client.publish(sub.channel, { name: $("name").value, text }, { idempotencyKey: newKey() });
  } catch (err) {
    // 113: it may have been published (the room will show it if it was).
    const outcome = err.code === ErrorCode.OutcomeUnknown ? "may not have been sent" : "not sent";
    note(`${outcome} (${err.message}): "${text}"`, true);
  }
});

// crypto.randomUUID exists only in secure contexts (https, localhost).
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

$("offline").addEventListener("click", () => {
  client.close();
  note("offline for 5 s…");
  setTimeout(() => client.connect(), 5000);
});

join($("channel").value);
client.connect();
window.wsgateDemo = { client }; // for the console (and the browser test)
