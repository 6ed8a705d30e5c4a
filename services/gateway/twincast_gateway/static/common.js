"use strict";
// What the guest page and the owner console share: caption lines and ICE gathering.

// The caption line for `key` in the #captions list, made on first use; returns the element
// and its record in `captions` (what the page's snapshot() reports).
function captionLine(lines, captions, key, who) {
  let li = lines.get(key);
  if (!li) {
    li = document.createElement("li");
    li.className = who;
    document.getElementById("captions").appendChild(li);
    lines.set(key, li);
    captions.push({key, who, text: "", final: false, sources: []});
  }
  return [li, captions.find((c) => c.key === key)];
}

// A caption (either side's words) or a piece of the twin's reply, into its line on the page.
function spokenLine(lines, captions, msg) {
  if (msg.type === "caption") {
    const who = msg.who === "owner" ? "owner" : "guest";
    const [li, c] = captionLine(lines, captions, who[0] + msg.utterance_id, who);
    c.text = msg.text; c.final = msg.final;
    li.textContent = msg.text; li.classList.toggle("partial", !msg.final);
    return [li, c];
  }
  const who = msg.author === "owner" ? "twin said" : "twin";
  const [li, c] = captionLine(lines, captions, "r" + msg.reply_id, who);
  c.text = (c.text + " " + msg.text).trim(); c.final = msg.final;
  li.textContent = c.text;
  return [li, c];
}

function citationLabel(cite) {
  return [cite.title, cite.date, cite.location].filter(Boolean).join(" · ");
}

// Resolves once the peer has gathered its ICE candidates (no trickle), or after 3 s.
async function gathered(peer) {
  if (peer.iceGatheringState === "complete") return;
  await new Promise((done) => {
    const t = setTimeout(done, 3000);
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") { clearTimeout(t); done(); }
    });
  });
}
