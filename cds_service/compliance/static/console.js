// OncoCDS audit review console: vanilla JS, no dependencies. All data comes from the audited
// /api/v1/audit endpoints with the pasted bearer token; nothing is written with innerHTML.
"use strict";

const TOKEN_KEY = "oncocds.compliance.token";
const API = "/api/v1/audit";
const OUTCOMES = { 0: "Success", 4: "Refused / minor failure", 8: "Serious failure", 12: "Major failure" };
const ACTIONS = { C: "Create", R: "Read", U: "Update", D: "Delete", E: "Execute" };
const PAGE_SIZE = 25;

const $ = (id) => document.getElementById(id);
let cursors = [null];  // cursor of each page shown so far (index = page number)
let page = 0;
let lastFilters = {};

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {}

async function api(path, params, accept) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
  }
  const response = await fetch(url, {
    headers: { Authorization: "Bearer " + token(), Accept: accept || "application/json" },
  });
  if (response.status === 401) {
    signOut("The token was refused or has expired. Please sign in again.");
    throw new ApiError("not signed in");
  }
  if (!response.ok) {
    let message = "Request failed (" + response.status + ")";
    try {
      const body = await response.json();
      if (body.issue && body.issue[0] && body.issue[0].diagnostics) message = body.issue[0].diagnostics;
    } catch (e) { /* not JSON */ }
    throw new ApiError(message);
  }
  return response;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function formatTime(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", "Z") : ""; }

function filtersFromForm() {
  const data = new FormData($("filter-form"));
  const out = {};
  for (const [k, v] of data.entries()) {
    if (!v) continue;
    if (k === "since" || k === "until") out[k] = new Date(v + "Z").toISOString();
    else out[k] = v.trim();
  }
  return out;
}

function showOnly(sectionId) {
  for (const id of ["detail", "timeline", "disclosures"]) $(id).hidden = id !== sectionId;
  if (sectionId) $(sectionId).focus();
}

async function search(newPage) {
  $("search-error").textContent = "";
  page = newPage;
  const params = { ...lastFilters, limit: PAGE_SIZE, cursor: cursors[page] };
  try {
    const body = await (await api(API, params)).json();
    const tbody = $("results-body");
    tbody.replaceChildren();
    for (const rec of body.items) {
      const tr = document.createElement("tr");
      cell(tr, formatTime(rec.recorded));
      cell(tr, rec.eventType + (rec.eventSubtype ? " / " + rec.eventSubtype : ""));
      cell(tr, ACTIONS[rec.action] || rec.action);
      cell(tr, OUTCOMES[rec.outcome] || rec.outcome, "outcome-" + rec.outcome);
      cell(tr, rec.agentWho);
      cell(tr, rec.agentUser);
      cell(tr, rec.patientId);
      const td = cell(tr, "");
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = "Open";
      open.setAttribute("aria-label", "Open event " + rec.eventType + " at " + formatTime(rec.recorded));
      open.dataset.recordId = rec.id;
      open.addEventListener("click", () => openDetail(rec.id));
      td.appendChild(open);
      tbody.appendChild(tr);
    }
    cursors[page + 1] = body.nextCursor;
    $("next-page").disabled = body.nextCursor === null;
    $("prev-page").disabled = page === 0;
    $("page-label").textContent = "Page " + (page + 1);
    $("search-status").textContent = body.items.length + " record(s) on this page";
  } catch (e) {
    if (e instanceof ApiError) $("search-error").textContent = e.message;
    else throw e;
  }
}

async function openDetail(id) {
  try {
    const rec = await (await api(API + "/" + encodeURIComponent(id))).json();
    const dl = $("detail-list");
    dl.replaceChildren();
    const fields = [
      ["Record id", rec.id], ["Position in chain", rec.seq], ["Recorded (UTC)", rec.recorded],
      ["Event type", rec.eventType], ["Subtype", rec.eventSubtype],
      ["Action", ACTIONS[rec.action] || rec.action], ["Outcome", OUTCOMES[rec.outcome] || rec.outcome],
      ["Outcome detail", rec.outcomeDesc], ["Who (agent)", rec.agentWho], ["Agent kind", rec.agentType],
      ["User", rec.agentUser], ["Tenant", rec.tenant], ["Patient", rec.patientId],
      ["Entities", (rec.entities || []).map((e) => e.type + "/" + e.id).join(", ")],
      ["Purpose of use", rec.purposeOfUse], ["Request id", rec.requestId],
      ["hookInstance", rec.hookInstance], ["HL7 MSH-10", rec.controlId],
      ["Recorded by", rec.sourceObserver], ["Remote address", rec.remoteAddr],
      ["Details", JSON.stringify(rec.details)], ["Record hash", rec.recordHash], ["Previous hash", rec.prevHash],
    ];
    for (const [label, value] of fields) {
      if (value === null || value === undefined || value === "") continue;
      const dt = document.createElement("dt"); dt.textContent = label;
      const dd = document.createElement("dd"); dd.textContent = String(value);
      dl.append(dt, dd);
    }
    showOnly("detail");
  } catch (e) {
    if (e instanceof ApiError) $("search-error").textContent = e.message; else throw e;
  }
}

async function timeline() {
  const patient = $("f-patient").value.trim();
  if (!patient) { $("search-error").textContent = "Enter a patient first."; return; }
  const body = await (await api(API, { patient, limit: 500 })).json();
  const list = $("timeline-list");
  list.replaceChildren();
  let day = null;
  let inner = null;
  for (const rec of body.items) {
    const d = rec.recorded.slice(0, 10);
    if (d !== day) {
      day = d;
      const li = document.createElement("li");
      const h = document.createElement("strong"); h.textContent = d;
      inner = document.createElement("ul");
      li.append(h, inner);
      list.appendChild(li);
    }
    const item = document.createElement("li");
    item.textContent = formatTime(rec.recorded).slice(11) + " — " + rec.eventType + " by " + rec.agentWho +
      (rec.agentUser ? " (" + rec.agentUser + ")" : "") + " — " + (OUTCOMES[rec.outcome] || rec.outcome);
    inner.appendChild(item);
  }
  $("timeline-h").textContent = "Access timeline for " + patient + " (" + body.items.length + " events)";
  showOnly("timeline");
}

async function disclosures() {
  const patient = $("f-patient").value.trim();
  if (!patient) { $("search-error").textContent = "Enter a patient first."; return; }
  const body = await (await api(API + "/disclosures", { patient })).json();
  const tbody = $("disclosures-body");
  tbody.replaceChildren();
  for (const d of body.disclosures) {
    const tr = document.createElement("tr");
    cell(tr, formatTime(d.date)); cell(tr, d.recipient); cell(tr, d.user); cell(tr, d.what);
    cell(tr, d.purpose); cell(tr, d.tpoExempt ? "yes" : "no");
    tbody.appendChild(tr);
  }
  showOnly("disclosures");
}

async function exportAs(format) {
  $("search-error").textContent = "";
  try {
    const response = await api(API + "/export", { ...filtersFromForm(), format },
      format === "csv" ? "text/csv" : "application/fhir+json");
    const blob = await response.blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    const id = response.headers.get("X-OncoCDS-Audit-Export-Id") || "export";
    a.download = "audit-" + id + (format === "csv" ? ".csv" : ".json");
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    $("search-status").textContent = "Export ready (sealed through record " +
      response.headers.get("X-OncoCDS-Audit-Sealed-To") + ", checkpoint " +
      response.headers.get("X-OncoCDS-Audit-Checkpoint") + ").";
  } catch (e) {
    if (e instanceof ApiError) $("search-error").textContent = e.message; else throw e;
  }
}

async function verifyChain(full) {
  $("integrity-status").textContent = full ? "Checking every record…" : "Checking…";
  try {
    const r = await (await api(API + "/verify", full ? {} : { recent: "true" })).json();
    const status = $("integrity-status");
    if (r.ok) {
      status.className = "ok";
      status.textContent = "Intact: " + r.checkpointsChecked + " signed checkpoints and " +
        r.recordsChecked + (full ? " records (full check)" : " newest records") + " verified" +
        (r.unsealedRecords ? " (" + r.unsealedRecords + " newest records not yet sealed)" : "") + ".";
    } else {
      status.className = "broken";
      const b = r.firstBroken;
      status.textContent = "ALTERED: first problem at record " + b.seq + " — " + b.reason;
    }
    const cp = r.lastCheckpoint;
    $("integrity-checkpoint").textContent = cp
      ? "Last checkpoint #" + cp.id + ": records " + cp.firstSeq + "–" + cp.lastSeq + ", signed " +
        formatTime(cp.created) + " by key " + cp.keyId + ", root " + cp.rootHash.slice(0, 16) + "…"
      : "No checkpoint yet.";
  } catch (e) {
    if (e instanceof ApiError) $("integrity-status").textContent = e.message; else throw e;
  }
}

// OpenID Connect sign-in: authorization code with PKCE (RFC 7636), a public client.
const OIDC_KEY = "oncocds.compliance.oidc";

function b64url(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function redirectUri() { return window.location.origin + "/compliance"; }

async function oidcStart() {
  const cfg = document.body.dataset;
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  sessionStorage.setItem(OIDC_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(cfg.authorizationEndpoint);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", cfg.clientId);
  url.searchParams.set("redirect_uri", redirectUri());
  url.searchParams.set("scope", cfg.scope);
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", b64url(new Uint8Array(digest)));
  url.searchParams.set("code_challenge_method", "S256");
  window.location.assign(url.toString());
}

async function oidcFinish() {
  const params = new URLSearchParams(window.location.search);
  if (!params.has("code") && !params.has("error")) return false;
  const saved = JSON.parse(sessionStorage.getItem(OIDC_KEY) || "null");
  sessionStorage.removeItem(OIDC_KEY);
  // The code must not stay in the address bar or the history.
  window.history.replaceState(null, "", window.location.pathname);
  if (params.has("error") || !saved || saved.state !== params.get("state")) {
    signOut("Sign-in with your organisation failed. Please try again.");
    return true;
  }
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code: params.get("code"),
    redirect_uri: redirectUri(),
    client_id: document.body.dataset.clientId,
    code_verifier: saved.verifier,
  });
  try {
    const response = await fetch(document.body.dataset.tokenEndpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body,
    });
    if (!response.ok) throw new Error("token endpoint " + response.status);
    const tokens = await response.json();
    if (!tokens.access_token) throw new Error("no access token");
    sessionStorage.setItem(TOKEN_KEY, tokens.access_token);
  } catch (e) {
    signOut("Sign-in with your organisation failed. Please try again.");
    return true;
  }
  await signedIn();
  return true;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("signin").hidden = false;
  $("sign-out").hidden = true;
  $("whoami").textContent = "Not signed in";
  $("signin-error").textContent = message || "";
}

async function signedIn() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  $("whoami").textContent = "Signed in";
  cursors = [null];
  lastFilters = {};
  await verifyChain(false);
  if (!token()) return;
  await search(0);
  $("f-patient").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    await signedIn();
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("filter-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    lastFilters = filtersFromForm();
    cursors = [null];
    showOnly(null);
    search(0);
  });
  $("next-page").addEventListener("click", () => search(page + 1));
  $("prev-page").addEventListener("click", () => search(Math.max(0, page - 1)));
  $("close-detail").addEventListener("click", () => { showOnly(null); $("results-h").focus(); });
  $("show-timeline").addEventListener("click", () => timeline().catch(() => {}));
  $("show-disclosures").addEventListener("click", () => disclosures().catch(() => {}));
  $("export-fhir").addEventListener("click", () => exportAs("fhir"));
  $("export-csv").addEventListener("click", () => exportAs("csv"));
  $("reverify").addEventListener("click", () => verifyChain(true));
  const oidcButton = $("oidc-signin");
  if (oidcButton) oidcButton.addEventListener("click", () => oidcStart());
  oidcFinish().then((handled) => { if (!handled && token()) signedIn(); });
});
