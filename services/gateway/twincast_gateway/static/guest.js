"use strict";
// The guest's side of a live session: microphone up, avatar down, captions on a data channel.
const cfg = JSON.parse(document.body.dataset.config);
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const state = {
  phase: "idle", error: null, sessionId: null, captions: [], sources: [],
  interrupted: 0, animation: null, audio: {energy: 0, samples: 0}, video: {frames: 0, changes: 0},
  notice: $("notice").textContent.replace(/\s+/g, " ").trim(), floor: "twin", mouthMax: {},
};
let pc = null, events = null, peerId = null, statsTimer = null;
const lines = new Map();

function setPhase(phase) { state.phase = phase; $("phase").textContent = phase; }

function onMessage(msg) {
  if (msg.type === "caption") {
    spokenLine(lines, state.captions, msg);
  } else if (msg.type === "reply") {
    const [, c] = spokenLine(lines, state.captions, msg);
    c.deferred = msg.deferred;
    for (const label of msg.citations.map(citationLabel)) {
      if (!state.sources.includes(label)) {
        state.sources.push(label);
        const item = document.createElement("li");
        item.textContent = label;
        $("sources").appendChild(item);
      }
    }
  } else if (msg.type === "floor") {
    // The owner stepped in (or handed back): say so plainly, next to the permanent notice.
    state.floor = msg.holder;
    $("live").hidden = msg.holder !== "owner";
  } else if (msg.type === "interrupted") {
    state.interrupted += 1;
  } else if (msg.type === "error") {
    state.error = msg.error;
  } else if (msg.type === "hello") {
    state.sessionId = msg.session_id;
  }
}

const probe = document.createElement("canvas");
probe.width = probe.height = 48;
let lastPixels = null;
async function poll() {
  if (!pc) return;
  const stats = await pc.getStats();
  stats.forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    if (r.kind === "audio") {
      state.audio = {energy: r.totalAudioEnergy || 0, samples: r.totalSamplesReceived || 0};
    } else if (r.kind === "video") {
      state.video.frames = r.framesDecoded || 0;
    }
  });
  const v = $("avatar");
  if (v.videoWidth) {
    const g = probe.getContext("2d", {willReadFrequently: true});
    g.drawImage(v, 0, 0, probe.width, probe.height);
    const px = g.getImageData(0, 0, probe.width, probe.height).data;
    if (lastPixels) {
      let diff = 0;
      for (let i = 0; i < px.length; i += 4) diff += Math.abs(px[i] - lastPixels[i]);
      if (diff > 0) state.video.changes += 1;
    }
    lastPixels = px;
  }
}

async function start() {
  $("start").disabled = true;
  setPhase("connecting");
  try {
    const clean = params.has("raw");
    const mic = await navigator.mediaDevices.getUserMedia({audio: {
      echoCancellation: !clean, noiseSuppression: !clean, autoGainControl: !clean}});
    pc = new RTCPeerConnection({iceServers: cfg.iceServers});
    const remote = new MediaStream();
    $("avatar").srcObject = remote;
    pc.ontrack = (e) => { remote.addTrack(e.track); };
    pc.addTransceiver(mic.getAudioTracks()[0], {direction: "sendrecv", streams: [mic]});
    pc.addTransceiver("video", {direction: "recvonly"});
    events = pc.createDataChannel("events");
    events.onmessage = (e) => onMessage(JSON.parse(e.data));
    const anim = pc.createDataChannel("animation", {ordered: false, maxRetransmits: 0});
    anim.onmessage = (e) => {
      const a = state.animation = JSON.parse(e.data);
      state.mouthMax[a.speaker] = Math.max(state.mouthMax[a.speaker] || 0, a.mouth_open);
    };
    pc.onconnectionstatechange = () => {
      if (pc) setPhase(pc.connectionState);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const r = await fetch("/api/sessions", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({token: cfg.token, sdp: pc.localDescription.sdp})});
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    state.sessionId = body.session_id;
    peerId = body.peer_id;
    await pc.setRemoteDescription({type: "answer", sdp: body.sdp});
    statsTimer = setInterval(poll, 200);
    $("hangup").disabled = false;
    $("question").disabled = $("send").disabled = false;
  } catch (err) {
    state.error = String(err.message || err);
    setPhase("failed");
    $("start").disabled = false;
  }
}

async function hangUp() {
  if (!pc) return;
  clearInterval(statsTimer);
  if (state.sessionId && peerId) {
    await fetch(`/api/sessions/${state.sessionId}/peers/${peerId}`,
      {method: "DELETE", keepalive: true}).catch(() => {});
  }
  pc.close(); pc = null;
  setPhase("ended");
  $("hangup").disabled = true;
}

$("start").onclick = start;
$("hangup").onclick = hangUp;
$("ask").onsubmit = (e) => {
  e.preventDefault();
  const text = $("question").value.trim();
  if (text && events && events.readyState === "open") {
    events.send(JSON.stringify({type: "text", text}));
    $("question").value = "";
  }
};
window.addEventListener("pagehide", hangUp);
window.snapshot = () => JSON.parse(JSON.stringify(state));
window.askText = (text) => events.send(JSON.stringify({type: "text", text}));
window.hangUp = hangUp;
if (params.has("autostart")) start();
