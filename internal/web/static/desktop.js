// The desktop in a browser tab: asks the node for a single-use console
// ticket, connects noVNC through /gateway/vnc, and on a network blip asks
// for a new ticket and reconnects; the desktop itself keeps running.
import RFB from "./npm/novnc/core/rfb.js";

const app = document.getElementById("desktop-app");
const screen = document.getElementById("screen");
const statusEl = document.getElementById("status");
const notice = document.getElementById("notice");
const cad = document.getElementById("cad");
const clipPanel = document.getElementById("clipboard");
const clipToggle = document.getElementById("clip-toggle");
const clipText = document.getElementById("clip-text");
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const desktopID = app.dataset.desktop;

const maxAttempts = 8;
let rfb = null;
let attempts = 0;
let leaving = false;

// data-state lets people (and tests) see where the page is:
// connecting, connected, reconnecting, gone, failed.
function setState(state, text) {
  app.dataset.state = state;
  statusEl.textContent = text;
}

function showNotice(html) {
  notice.replaceChildren(...html);
  notice.hidden = false;
}

function hideNotice() {
  notice.hidden = true;
  notice.replaceChildren();
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

function text(t) {
  return document.createTextNode(t);
}

class Gone extends Error {}

async function ticket() {
  const res = await fetch(`/desktop/${encodeURIComponent(desktopID)}/ticket`, {
    method: "POST",
    headers: { "X-CSRF-Token": csrf },
    credentials: "same-origin",
  });
  const json = (res.headers.get("Content-Type") || "").startsWith("application/json");
  if (res.redirected || !json) {
    throw new Gone("Your session ended: sign in again.");
  }
  const body = await res.json();
  if (res.status === 410) {
    throw new Gone(body.error);
  }
  if (!res.ok) {
    throw new Error(body.error || `the node answered ${res.status}`);
  }
  return body.url;
}

function gone(message) {
  setState("gone", "Disconnected");
  cad.disabled = true;
  showNotice([text(message + " "), link("/desktops", "Back to My desktops")]);
}

function retry(reason) {
  attempts++;
  cad.disabled = true;
  if (attempts > maxAttempts) {
    setState("failed", "Disconnected");
    const again = document.createElement("button");
    again.type = "button";
    again.textContent = "Try again";
    again.addEventListener("click", () => {
      attempts = 0;
      connect();
    });
    showNotice([text(reason + " Lobby stopped retrying; your desktop is still yours. "), again]);
    return;
  }
  const delay = Math.min(500 * 2 ** (attempts - 1), 8000);
  setState("reconnecting", `Reconnecting (attempt ${attempts} of ${maxAttempts})…`);
  showNotice([text(`${reason} Reconnecting in ${Math.ceil(delay / 1000)} s; your desktop keeps running.`)]);
  setTimeout(connect, delay);
}

async function connect() {
  if (leaving) return;
  if (attempts === 0) setState("connecting", "Connecting…");
  let url;
  try {
    url = await ticket();
  } catch (e) {
    if (e instanceof Gone) {
      gone(e.message);
    } else {
      retry(`Could not reach Lobby (${e.message}).`);
    }
    return;
  }
  const ws = new URL(url, window.location.href);
  ws.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  screen.replaceChildren();
  rfb = new RFB(screen, ws.href, { wsProtocols: ["binary"] });
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.focusOnClick = true;
  rfb.background = "#1d2430";
  rfb.addEventListener("connect", () => {
    attempts = 0;
    hideNotice();
    setState("connected", "Connected");
    cad.disabled = false;
    rfb.focus();
  });
  rfb.addEventListener("disconnect", (e) => {
    rfb = null;
    if (leaving) return;
    retry(e.detail.clean ? "The desktop closed the connection." : "The connection was lost.");
  });
  rfb.addEventListener("securityfailure", (e) => {
    gone(`The desktop refused the connection (${e.detail.reason || e.detail.status}).`);
    leaving = true;
  });
  rfb.addEventListener("clipboard", (e) => {
    clipText.value = e.detail.text;
    if (navigator.clipboard && document.hasFocus()) {
      navigator.clipboard.writeText(e.detail.text).catch(() => {});
    }
  });
  rfb.addEventListener("desktopname", (e) => {
    document.title = `${e.detail.name} · Lobby`;
  });
}

cad.addEventListener("click", () => rfb && rfb.sendCtrlAltDel());
clipToggle.addEventListener("click", () => {
  clipPanel.hidden = !clipPanel.hidden;
  clipToggle.setAttribute("aria-expanded", String(!clipPanel.hidden));
  if (!clipPanel.hidden) clipText.focus();
});
document.getElementById("clip-send").addEventListener("click", () => {
  if (rfb) {
    rfb.clipboardPasteFrom(clipText.value);
    rfb.focus();
  }
});
document.getElementById("fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) {
    document.exitFullscreen();
  } else {
    app.requestFullscreen().catch(() => {});
  }
});
document.querySelector(".bar form").addEventListener("submit", () => {
  leaving = true;
  if (rfb) rfb.disconnect();
});
window.addEventListener("pagehide", () => {
  leaving = true;
});

connect();
