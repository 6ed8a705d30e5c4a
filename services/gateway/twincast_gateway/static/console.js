"use strict";
// The owner's console: watch live sessions, take the floor with your own voice, hand it back,
// put words in the twin's mouth, approve its drafts in shadow mode, read the audit.
const cfg = JSON.parse(document.body.dataset.config);
const $ = (id) => document.getElementById(id);
const auth = {"Authorization": "Bearer " + cfg.token, "Content-Type": "application/json"};
const state = {
  sessions: [], sessionId: null, peerId: null, phase: "idle", floor: "twin", fence: null,
  shadow: false, mood: null, captions: [], drafts: [], audit: [], error: null,
  takeoverMs: null, audio: {energy: 0, samples: 0, guestEnergy: 0},
};
let pc = null, mic = null, events = null, renewTimer = null;
const lines = new Map();

async function api(method, path, body) {
  const r = await fetch(path, {method, headers: auth, body: body && JSON.stringify(body)});
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error(data.error || r.statusText), {status: r.status});
  return data;
}

async function refresh() {
  try {
    const data = await api("GET", "/api/console/sessions");
    state.sessions = data.sessions;
    const ul = $("sessions");
    ul.replaceChildren();
    if (!data.sessions.length) ul.innerHTML = '<li class="empty">none yet</li>';
    for (const s of data.sessions) {
      const li = document.createElement("li");
      const who = s.guest_id ? `guest ${s.guest_id}` : "a guest";
      const floor = s.floor ? "you or another console hold the floor" : "the twin talks";
      li.textContent = `${who} · ${s.scope} · since ${new Date(s.created).toLocaleTimeString()}` +
        ` · ${floor}`;
      const open = document.createElement("button");
      open.textContent = s.session_id === state.sessionId ? "open" : "Open";
      open.disabled = s.session_id === state.sessionId;
      open.onclick = action(() => openSession(s.session_id));
      li.appendChild(open);
      ul.appendChild(li);
    }
  } catch (err) { showError(err); }
}

function onMessage(msg) {
  if (msg.type === "caption") {
    spokenLine(lines, state.captions, msg);
  } else if (msg.type === "reply") {
    const [li, c] = spokenLine(lines, state.captions, msg);
    for (const label of msg.citations.map(citationLabel)) {
      if (!c.sources.includes(label)) c.sources.push(label);
    }
    if (c.sources.length) {
      const small = document.createElement("span");
      small.className = "cites"; small.textContent = "sources: " + c.sources.join("; ");
      li.appendChild(small);
    }
  } else if (msg.type === "draft") {
    showDraft(msg);
  } else if (msg.type === "mood") {
    state.mood = msg;
    $("mood").textContent = `${msg.label} (valence ${msg.valence.toFixed(2)}, ` +
      `arousal ${msg.arousal.toFixed(2)})`;
  } else if (msg.type === "floor") {
    if (msg.holder === "twin") lostFloor(msg.reason === "expired" ? "expired" : "twin");
    else if (msg.console !== state.peerId) { state.floor = "other"; showFloor(); }
  } else if (msg.type === "error") {
    showError(new Error(msg.error));
  }
}

function showDraft(msg) {
  state.drafts.push({draft_id: msg.draft_id, text: msg.text, question: msg.question,
    status: "waiting"});
  const li = document.createElement("li");
  li.id = "draft-" + msg.draft_id;
  const q = document.createElement("p"); q.textContent = "Guest asked: " + msg.question;
  const text = document.createElement("textarea"); text.value = msg.text;
  const buttons = [["Approve", "approve"], ["Send my edit", "edit"], ["Reject", "reject"]];
  li.append(q, text);
  for (const [label, decision] of buttons) {
    const b = document.createElement("button");
    b.textContent = label;
    b.onclick = action(() => decide(msg.draft_id, decision, decision === "edit" ? text.value : ""));
    li.appendChild(b);
  }
  $("drafts").appendChild(li);
}

async function openSession(sessionId) {
  closeSession();
  state.sessionId = sessionId; state.phase = "connecting";
  $("session").hidden = false; $("session-id").textContent = sessionId;
  try {
    mic = await navigator.mediaDevices.getUserMedia({audio: true});
    // The microphone is live only while this console holds the floor.
    mic.getAudioTracks()[0].enabled = false;
    pc = new RTCPeerConnection({iceServers: cfg.iceServers});
    const video = new MediaStream();
    $("avatar").srcObject = video;
    let audioLine = 0;
    pc.ontrack = (e) => {
      if (e.track.kind === "video") { video.addTrack(e.track); return; }
      const el = audioLine++ === 0 ? $("twin-voice") : $("guest-voice");
      el.srcObject = new MediaStream([e.track]);
    };
    pc.addTransceiver(mic.getAudioTracks()[0], {direction: "sendrecv", streams: [mic]});
    pc.addTransceiver("audio", {direction: "recvonly"});
    pc.addTransceiver("video", {direction: "recvonly"});
    events = pc.createDataChannel("events");
    events.onmessage = (e) => onMessage(JSON.parse(e.data));
    pc.onconnectionstatechange = () => { if (pc) state.phase = pc.connectionState; };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await api("POST", `/api/console/sessions/${sessionId}/peers`,
      {sdp: pc.localDescription.sdp});
    state.peerId = answer.peer_id;
    await pc.setRemoteDescription({type: "answer", sdp: answer.sdp});
    const listed = state.sessions.find((s) => s.session_id === sessionId);
    state.shadow = $("shadow").checked = Boolean(listed && listed.shadow);
  } catch (err) {
    showError(err); state.phase = "failed";
  }
  refresh();
}

function closeSession() {
  if (renewTimer) clearInterval(renewTimer);
  if (pc) pc.close();
  if (mic) mic.getTracks().forEach((t) => t.stop());
  pc = mic = events = null; renewTimer = null;
  state.floor = "twin"; state.fence = null;
}

async function takeOver() {
  const clicked = performance.now();
  try {
    const got = await api("POST", `/api/sessions/${state.sessionId}/floor`,
      {console: state.peerId});
    state.fence = got.fence; state.floor = "owner";
    mic.getAudioTracks()[0].enabled = true;
    // Your own voice comes back on the twin's line while you talk: no echo of yourself.
    $("twin-voice").muted = true;
    state.takeoverMs = performance.now() - clicked;
    renewTimer = setInterval(renew, Math.max(200, got.lease_ms / 3));
    showFloor();
  } catch (err) {
    showError(err);
    if (err.status === 409) state.floor = "other";
    showFloor();
  }
}

async function renew() {
  try {
    await api("POST", `/api/sessions/${state.sessionId}/floor/renew`,
      {console: state.peerId, fence: state.fence});
  } catch (err) { if (err.status === 409) lostFloor("expired"); }
}

function lostFloor(why) {
  if (renewTimer) clearInterval(renewTimer);
  renewTimer = null;
  if (mic) mic.getAudioTracks()[0].enabled = false;
  $("twin-voice").muted = false;
  state.floor = why; state.fence = null;
  showFloor();
}

async function handBack() {
  try {
    await api("POST", `/api/sessions/${state.sessionId}/floor/release`,
      {console: state.peerId, fence: state.fence});
  } catch (err) { showError(err); }
  lostFloor("twin");
}

function showFloor() {
  const mine = state.floor === "owner";
  $("floor").textContent = mine ? "you hold the floor: the guest hears you" :
    state.floor === "other" ? "another console holds the floor" :
    state.floor === "expired" ? "your hold on the floor ran out; the twin talks again" :
    "the twin holds the floor";
  $("floor").className = mine ? "owner" : "";
  $("take").disabled = mine; $("give").disabled = !mine;
}

async function say(text) {
  const body = {text};
  if (state.fence) Object.assign(body, {console: state.peerId, fence: state.fence});
  return api("POST", `/api/sessions/${state.sessionId}/say`, body);
}

async function setShadow(on) {
  await api("PUT", `/api/sessions/${state.sessionId}/shadow`, {on});
  state.shadow = on; $("shadow").checked = on;
}

function showError(err) {
  state.error = String(err.message || err);
  $("error").textContent = state.error;
  $("error").hidden = false;
}

async function decide(draftId, decision, text) {
  await api("POST", `/api/sessions/${state.sessionId}/drafts/${draftId}`, {decision, text});
  const d = state.drafts.find((x) => x.draft_id === draftId);
  if (d) d.status = decision;
  const li = $("draft-" + draftId);
  if (li) li.remove();
}

async function loadAudit() {
  const data = await api("GET", `/api/sessions/${state.sessionId}/audit`);
  state.audit = data.records;
  const body = $("audit").querySelector("tbody");
  body.replaceChildren();
  for (const r of data.records) {
    const tr = document.createElement("tr");
    const who = r.speaker + (r.author === "owner" && r.speaker === "twin" ? " (your words)" : "");
    for (const cell of [new Date(r.ts).toLocaleTimeString(), who, r.text,
      r.citations.map((c) => c.title).join("; ")]) {
      const td = document.createElement("td"); td.textContent = cell; tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  return data.records;
}

async function pollStats() {
  if (!pc) return;
  const stats = await pc.getStats();
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      state.audio.samples = r.totalSamplesReceived || 0;
    }
  });
}

// What the owner does clears the last error; what fails shows its own.
function action(run) {
  return (...args) => {
    state.error = null; $("error").hidden = true;
    return Promise.resolve().then(() => run(...args)).catch(showError);
  };
}

$("take").onclick = action(takeOver);
$("give").onclick = action(handBack);
$("shadow").onchange = action((e) => setShadow(e.target.checked));
$("say").onsubmit = action(async (e) => {
  e.preventDefault();
  const text = $("line").value.trim();
  if (text) { await say(text); $("line").value = ""; }
});
$("load-audit").onclick = action(loadAudit);
window.addEventListener("pagehide", closeSession);
setInterval(refresh, 2000);
setInterval(pollStats, 500);
refresh();
window.snapshot = () => JSON.parse(JSON.stringify(state));
window.twincast = {openSession, takeOver, handBack, say, setShadow, decide, loadAudit, refresh};
