// g2w-import's page: asks the local server what to show, and sends it what the person chose.
// Every text from the file or the API is put in with textContent, never as HTML.
"use strict";

const secret = document.querySelector('meta[name="g2w-secret"]').content;
const OTHER = "__other";
const $ = (id) => document.getElementById(id);

let webinars = [];
let lastState = null;
let synced = "";
let polling = null;
let resultShown = false;
let signingIn = false;
let progressShown = false;
// webinars met outside the list (a file's, a key typed), by key; whether the file names several
const known = new Map();
let several = false;
// why the last file chosen was refused before it could be checked (its type, its size)
let uploadError = "";
// why Register or Stop was refused, said beside them
let actionError = "";
// why Undo or the registrant list was refused, said beside each
let undoError = "";
let exportError = "";
// the undo or export the person just started: its result gets the focus once it is there
let awaited = "";

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") options.headers["X-G2W-Secret"] = secret;
  if (body instanceof Blob) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("The page lost its connection to g2w-import: is it still running in its terminal?");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(sentence(data.error || `The server answered ${response.status}.`));
  return data;
}

function sentence(text) {
  return /[.!?)]$/.test(text) ? text : text + ".";
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function alertBox(text, kind) {
  const box = $("alert");
  box.replaceChildren();
  if (!text) { box.hidden = true; return; }
  for (const line of [].concat(text)) box.append(element("p", line));
  box.className = kind === "note" ? "alert note" : "alert";
  box.hidden = false;
}

function failed(error) { alertBox(error.message); }

function number(n) { return n.toLocaleString(); }

// A message beside what it is about; empty text hides it.
function say(id, text) {
  const box = $(id);
  box.textContent = text ? sentence(text) : "";
  box.hidden = !text;
}

// Dates as the command shows them ("Wed 13 Jan 2027, 10:00 CET"): the server words them.
function describe(webinar) {
  return `${webinar.subject}${webinar.when ? " — " + webinar.when : ""} (${webinar.key})`;
}

// --- sign-in ----------------------------------------------------------------------------------

async function loadSignIn() {
  let status;
  try { status = await api("GET", "/api/sign-in"); } catch (error) { failed(error); return; }
  $("signin-headline").textContent = status.headline;
  $("signin-details").replaceChildren(...status.details.map((line) => element("li", line)));
  $("signin-message").textContent = status.message || "";
  $("signin-message").hidden = !status.message;
  $("signin-hint").textContent = status.hint || "";
  $("signin-hint").hidden = !status.hint;
  $("signin-button").hidden = !status.can_sign_in;
  $("signin-client").hidden = !(status.can_sign_in && status.needs_client);
  $("signin-address").hidden = !status.address;
  if (status.address) $("signin-link").href = status.address;
  if (status.state === "signing-in") {
    setTimeout(loadSignIn, 1000);
  } else if (signingIn) {
    signingIn = false;
    loadWebinars();
  }
}

async function signIn() {
  // the OAuth client typed on the page, when it was started without one
  const typed = $("signin-client").hidden ? undefined
    : { client_id: $("client-id").value, client_secret: $("client-secret").value };
  try {
    await api("POST", "/api/sign-in", typed);
    $("client-secret").value = "";
    signingIn = true;
    loadSignIn();
  } catch (error) { failed(error); }
}

// --- webinars ---------------------------------------------------------------------------------

async function loadWebinars() {
  const status = $("webinar-status");
  try {
    webinars = (await api("GET", "/api/webinars")).webinars;
    status.textContent = webinars.length ? "" : "You have no upcoming webinars; choose “Another webinar” to type a key.";
  } catch (error) {
    webinars = [];
    status.textContent = error.message;
  }
  fillWebinars($("webinar").value);
}

function fillWebinars(chosen) {
  const select = $("webinar");
  const options = [new Option(several ? "As the file says (its webinarKey column)" : "Choose a webinar…", "")];
  for (const webinar of webinars) options.push(new Option(describe(webinar), webinar.key));
  if (chosen && chosen !== OTHER && !webinars.some((w) => w.key === chosen)) {
    const named = known.get(chosen);
    options.push(new Option(named ? describe(named) : `Webinar ${chosen}`, chosen));
  }
  options.push(new Option("Another webinar: type its key…", OTHER));
  select.replaceChildren(...options);
  select.value = chosen || "";
  templateLink();
}

function templateLink() {
  const key = $("webinar").value;
  const link = $("template-link");
  const webinar = webinars.find((w) => w.key === key) || known.get(key);
  const named = webinar ? webinar.subject : "webinar " + key;
  if (key && key !== OTHER) {
    link.href = "/template.xlsx?webinar=" + encodeURIComponent(key);
    $("template-for").textContent = `made for ${named}, with its own questions`;
  } else {
    link.href = "/template.xlsx";
    $("template-for").textContent = "choose the webinar below to get one made for it, with its own questions";
  }
  $("export-for").textContent = `Everyone registered for ${key && key !== OTHER ? named : "the webinar chosen in step 3"}, however they registered, with their join links and their answers to its questions.`;
}

async function webinarChosen() {
  const key = $("webinar").value;
  $("other").hidden = key !== OTHER;
  templateLink();
  say("webinar-error", "");
  if (key === OTHER) { $("other-key").focus(); return; }
  await check(key);
}

async function check(key) {
  if (!lastState || !lastState.file) return;
  uploadError = "";
  try {
    render(await api("POST", "/api/check", { webinar: key }));
  } catch (error) { say("webinar-error", error.message); }
}

async function otherKey() {
  const key = $("other-key").value.trim();
  if (!key) { $("other-key").focus(); return; }
  say("webinar-error", "");
  fillWebinars(key);
  $("other").hidden = true;
  await Promise.all([lookUp(key), check(key)]);
}

// A key typed: its subject and start, once GoTo has said them.
async function lookUp(key) {
  try {
    const { webinar } = await api("GET", "/api/webinar?key=" + encodeURIComponent(key));
    known.set(webinar.key, webinar);
    if ($("webinar").value === key) fillWebinars(key);
  } catch (error) {
    // not signed in: the list's own line says so already
    const said = $("webinar-status").textContent === error.message;
    if ($("webinar").value === key && !said) say("webinar-error", error.message);
  }
}

// --- the file ---------------------------------------------------------------------------------

async function upload(file) {
  if (!file) return;
  uploadError = "";
  say("file-error", "");
  $("file-status").textContent = `Reading ${file.name}…`;
  // the webinar chosen stays chosen, for a file that names none of its own
  const chosen = $("webinar").value;
  let path = "/api/upload?name=" + encodeURIComponent(file.name);
  if (chosen && chosen !== OTHER) path += "&webinar=" + encodeURIComponent(chosen);
  try {
    render(await api("POST", path, file));
  } catch (error) {
    uploadError = error.message;
    if (lastState) render(lastState); else say("file-error", uploadError);
  }
  $("file").value = "";
}

function size(bytes) {
  if (bytes < 1e3) return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
  return bytes < 1e6 ? `${Math.round(bytes / 1e3)} KB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

// --- the state: plan, progress, result ----------------------------------------------------------

async function refresh() {
  try {
    render(await api("GET", "/api/state"));
  } catch (error) {
    failed(error);
    schedule(3000);
  }
}

function schedule(ms) {
  clearTimeout(polling);
  polling = setTimeout(refresh, ms);
}

function render(state) {
  if (lastState && lastState.sending && !state.sending) loadJournals();  // a run wrote to one
  lastState = state;
  renderFile(state);
  renderPlan(state);
  renderProgress(state.run);
  renderResult(state.result);
  renderUndo(state);
  renderExport(state);
  renderTask(state);
  const register = $("register");
  register.hidden = !state.register;
  register.textContent = state.register || "Register";
  register.disabled = Boolean(state.blocker);
  // a file that cannot be used says why beside the file, once
  const fileError = state.check && state.check.error;
  $("blocker").textContent = state.register && state.blocker && !fileError ? state.blocker : "";
  if (state.busy) schedule(500);
}

function renderFile(state) {
  const status = $("file-status");
  const check = state.check;
  say("file-error", uploadError || (check && !check.busy && check.error) || "");
  const notes = check && !check.busy && !uploadError ? check.notes : [];
  $("file-notes").replaceChildren(...notes.map((note) => element("li", "Warning: " + sentence(note))));
  $("file-notes").hidden = !notes.length;
  if (!state.file) { status.textContent = ""; return; }
  const checking = check && check.busy ? " Checking it…" : "";
  status.textContent = `${uploadError ? "Still chosen" : "Chosen"}: ${state.file.name} (${size(state.file.size)}).${checking}`;
  if (state.restored) {
    status.textContent += " Its import did not finish last time: press Continue to register the rest (nobody is registered twice), or choose another file.";
  }
}

function renderPlan(state) {
  const box = $("plan");
  const check = state.check;
  if (!check) {
    box.replaceChildren(element("p", "Choose the file and the webinar first.", "quiet"));
    return;
  }
  if (check.busy) {
    box.replaceChildren(element("p", "Checking every row…", "quiet"));
    return;
  }
  if (check.error) {
    box.replaceChildren(element("p", "Nothing can be sent from this file: step 2 says why.", "quiet"));
    return;
  }
  syncWebinar(state);
  box.replaceChildren(...check.plans.flatMap(planBlock));
}

function syncWebinar(state) {
  // Once per check: show the webinar it was made for (the file's, when it names one).
  const check = state.check;
  for (const plan of check.plans) if (plan.webinar) known.set(plan.key, plan.webinar);
  const keys = check.plans.map((plan) => plan.key).join(",");
  const signature = [state.file && state.file.name, check.chosen, keys].join("|");
  if (signature === synced) return;
  synced = signature;
  const plan = check.plans.length === 1 ? check.plans[0] : null;
  several = check.plans.length > 1 && !check.chosen;
  fillWebinars(check.chosen || (plan && plan.key) || "");
}

function planBlock(plan) {
  const nodes = [];
  const summary = element("p", null, "summary");
  const send = element("strong", number(plan.send));
  const rows = `${number(plan.rows)} ${plan.rows === 1 ? "row" : "rows"}`;
  if (plan.webinar) {
    summary.append(send, ` of ${rows} will be sent to `, element("strong", plan.webinar.subject));
    if (plan.webinar.when) summary.append(` (starts ${plan.webinar.when})`);
    summary.append(".");
  } else {
    summary.append(send, ` of ${rows} pass the checks that need no webinar.`);
  }
  nodes.push(summary);
  if (plan.connection) nodes.push(element("p", `Against ${plan.connection}.`, "hint"));
  const webinar = plan.webinar;
  if (webinar && typeof webinar.left === "number" && typeof webinar.limit === "number") {
    nodes.push(element("p", `Places: ${number(webinar.left)} of ${number(webinar.limit)} left.`, "hint"));
  }
  for (const warning of plan.warnings) nodes.push(element("p", "Warning: " + sentence(warning), "message"));
  if (plan.sheet) nodes.push(element("p", `Sheet: ${sentence(plan.sheet)}`, "hint"));
  if (plan.hidden) nodes.push(element("p", `Hidden rows: ${sentence(plan.hidden)}`, "hint"));
  if (plan.unused.length) {
    const columns = plan.unused.join("; ");
    nodes.push(element("p", plan.webinar
      ? `Not sent (kept in the report): ${columns}.`
      : `Kept in the report: ${columns}; whether they answer the webinar's questions is checked once a webinar is chosen.`,
      "hint"));
  }
  if (plan.attention.length) {
    const count = plan.attention.length + plan.more;
    nodes.push(element("h3", `${number(count)} ${count === 1 ? "problem needs" : "problems need"} attention; those rows are not sent`));
    nodes.push(table(["Row", "Column", "Problem"], plan.attention.map((p) => [p.row, p.column, p.problem]),
      "Rows that need attention, with the reason"));
    if (plan.more) nodes.push(element("p", `… and ${number(plan.more)} more, listed in the report.`, "quiet"));
  }
  return nodes;
}

function table(headers, rows, caption) {
  const wrap = element("div", null, "table-wrap");
  wrap.tabIndex = 0;
  wrap.setAttribute("role", "region");
  wrap.setAttribute("aria-label", caption);
  const grid = element("table");
  grid.append(element("caption", caption));
  const head = element("tr");
  for (const header of headers) {
    const th = element("th", header);
    th.scope = "col";
    head.append(th);
  }
  grid.append(element("thead"));
  grid.tHead.append(head);
  const body = element("tbody");
  for (const row of rows) {
    const tr = element("tr");
    row.forEach((cell, i) => tr.append(cellFor(headers[i], cell)));
    body.append(tr);
  }
  grid.append(body);
  wrap.append(grid);
  return wrap;
}

function cellFor(header, value) {
  const td = element("td", null, "col-" + header.toLowerCase());
  if (header === "joinUrl" && /^https?:\/\//i.test(value)) {
    // on one line, cut short with an ellipsis; the whole link on hover and to screen readers
    const link = element("a", value);
    link.href = value;
    link.title = value;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    td.append(link);
  } else {
    td.textContent = header === "status" ? value.replaceAll("_", " ") : value;
  }
  return td;
}

function countList(list, counts) {
  list.replaceChildren(...counts.map(({ status, count }) =>
    element("li", `${status.replace("_", " ")}: ${number(count)}`, status)));
}

function renderProgress(run) {
  const box = $("progress");
  box.hidden = !(run && run.busy);
  if (box.hidden) { progressShown = false; return; }
  $("progress-title").textContent = run.stopping ? "Stopping: the registrations under way finish…" : "Registering…";
  const bar = $("bar");
  bar.max = Math.max(run.total, 1);
  bar.value = run.done;
  const parts = [];
  if (!run.sending && !run.done) {
    parts.push("Reading the webinar's registrants, to send nobody twice…");
  } else {
    parts.push(`${number(run.done)} of ${number(run.total)} done`);
    if (run.rate) parts.push(`${run.rate.toLocaleString()} per second`);
    if (run.left) parts.push(`about ${run.left} left`);
  }
  let text = parts.join(" · ");
  if (run.resumed) {
    text += run.resuming
      ? ` — resuming: ${number(run.resumed)} rows were settled by an earlier run.`
      : ` — ${number(run.resumed)} rows were settled by an earlier run already; not sent again.`;
  }
  if (run.found) text += ` ${number(run.found)} were already registered and are not sent again.`;
  $("progress-text").textContent = text;
  countList($("progress-counts"), Object.entries(run.counts).map(([status, count]) => ({ status, count })));
  $("stop").disabled = run.stopping;
  $("stop").textContent = run.stopping ? "Stopping…" : "Stop";
  if (!progressShown) {  // Register is pressed at the foot of the plan: show what it started
    progressShown = true;
    box.scrollIntoView({ block: "center" });
  }
}

function renderResult(result) {
  const box = $("result");
  const notes = result ? result.notes.map((note) => element("li", "Warning: " + sentence(note))) : [];
  if (!result || result.error) {
    say("action-error", result && result.error ? result.error : actionError);
    $("run-notes").replaceChildren(...notes);
    $("run-notes").hidden = !notes.length;
    box.hidden = true;
    resultShown = false;
    return;
  }
  say("action-error", actionError);
  $("run-notes").hidden = true;
  $("result-notes").replaceChildren(...notes);
  $("result-notes").hidden = !notes.length;
  const headline = $("result-headline");
  headline.textContent = result.headline;
  headline.className = "headline " + result.tone;
  countList($("result-counts"), result.counts);
  $("report-link").textContent = `Download the report (${result.report})`;
  $("attention-link").hidden = $("attention-hint").hidden = !result.attention;
  if (result.attention) $("attention-link").textContent = `Download the rows to fix (${result.attention})`;
  // the join link last: it is the column cut short when the table is too wide for the window
  const order = result.columns.map((column, i) => i);
  const link = result.columns.indexOf("joinUrl");
  if (link >= 0) order.push(...order.splice(link, 1));
  const columns = order.map((i) => result.columns[i]);
  const grid = $("result-table");
  const head = element("tr");
  for (const column of columns) {
    const th = element("th", LABELS[column] || column, "col-" + column.toLowerCase());
    th.scope = "col";
    head.append(th);
  }
  grid.tHead.replaceChildren(head);
  const statusAt = result.columns.indexOf("status");
  grid.tBodies[0].replaceChildren(...result.rows.map((row) => {
    const tr = element("tr", null, row[statusAt]);
    for (const i of order) tr.append(cellFor(result.columns[i], String(row[i])));
    return tr;
  }));
  $("result-more").hidden = !result.more;
  $("result-more").textContent = `… and ${number(result.more)} more rows in the report.`;
  box.hidden = false;
  if (!resultShown) {
    resultShown = true;
    $("step-result").focus();
  }
}

// the result's columns in words; the report's own names are in the report
const LABELS = {
  row: "Row",
  webinarKey: "Webinar key",
  firstName: "First name",
  lastName: "Last name",
  email: "E-mail",
  status: "Status",
  note: "Note",
  error: "Problem",
  joinUrl: "Join link",
};

// --- undo and the registrant list -----------------------------------------------------------

// An undo or an export asked for: its refusal is said beside its button, and kept until the next.
async function task(path, body, which) {
  if (which === "undo") undoError = ""; else exportError = "";
  awaited = which;
  try {
    render(await api("POST", path, body));
  } catch (error) {
    if (which === "undo") undoError = error.message; else exportError = error.message;
    awaited = "";
    if (lastState) render(lastState);
  }
}

function undoWebinar() {
  const select = $("undo-webinar");
  return select.value ? { webinar: select.value } : {};
}

function planUndo() { return task("/api/undo/plan", undoWebinar(), "undo"); }

function confirmUndo() { return task("/api/undo", { webinar: lastState.undo.key }, "undo"); }

async function keepRegistrations() {
  await task("/api/undo/keep", undefined, "undo");
  awaited = "";
  $("undo-button").focus();  // back where the question came from
}

function exportList() {
  const key = $("webinar").value;
  return task("/api/export", key && key !== OTHER ? { webinar: key } : {}, "export");
}

function renderUndo(state) {
  const undo = state.undo;
  $("undo").hidden = !undo;
  if (!undo) { undoError = ""; return; }  // another file, another plan: nothing to undo yet
  const select = $("undo-webinar");
  const keys = undo.webinars.map((webinar) => webinar.key).join(",");
  if (select.dataset.keys !== keys) {
    select.replaceChildren(...undo.webinars.map((webinar) =>
      new Option(webinar.subject ? describe(webinar) : `Webinar ${webinar.key}`, webinar.key)));
    select.dataset.keys = keys;
  }
  if (undo.key && undo.phase !== "ready") select.value = undo.key;
  $("undo-which").hidden = undo.webinars.length < 2;
  select.disabled = undo.phase !== "ready" && undo.phase !== "done";
  const button = $("undo-button");
  button.hidden = undo.phase === "confirm";
  button.disabled = state.sending;
  say("undo-error", undoError || undo.error || "");

  const confirm = $("undo-confirm");
  const asking = undo.phase === "confirm";
  if (asking && confirm.hidden) {
    const plan = $("undo-plan");
    plan.replaceChildren();
    for (const [label, text] of undo.plan) {
      if (label) plan.append(element("dt", label));
      plan.append(element("dd", text, label ? "" : "more"));
    }
  }
  confirm.hidden = !asking;
  if (asking && awaited === "undo") {  // the plan is the question: take the reader to it
    awaited = "";
    $("undo-question").focus();
  }

  const result = undo.result;
  $("undo-result").hidden = !result;
  if (!result) return;
  const headline = $("undo-headline");
  headline.textContent = result.headline;
  headline.className = "headline " + result.tone;
  countList($("undo-counts"), result.counts);
  $("undo-meaning").textContent = result.meaning;
  const link = $("undo-link");
  link.hidden = !result.report;
  link.textContent = `Download the cancellation report (${result.report})`;
  const notes = result.notes.map((note) => element("li", "Warning: " + sentence(note)));
  $("undo-notes").replaceChildren(...notes);
  $("undo-notes").hidden = !notes.length;
  if (awaited === "undo") {
    awaited = "";
    headline.focus();
  }
}

function renderExport(state) {
  const exported = state.export;
  $("export-button").disabled = state.sending;
  say("export-error", exportError || (exported && exported.error) || "");
  const result = exported && exported.result;
  $("export-result").hidden = !result;
  if (!result) return;
  const headline = $("export-headline");
  headline.textContent = result.headline;
  headline.className = "headline " + result.tone;
  $("export-meaning").textContent = result.meaning;
  const link = $("export-link");
  link.hidden = !result.file;
  link.textContent = `Download ${result.file}`;
  const notes = result.notes.map((note) => element("li", "Warning: " + sentence(note)));
  $("export-notes").replaceChildren(...notes);
  $("export-notes").hidden = !notes.length;
  if (awaited === "export") {  // the file is what the button was for
    awaited = "";
    (result.file ? link : headline).focus();
  }
}

// How far an undo (its plan, or the cancelling) or an export has got.
function renderTask(state) {
  const undo = state.undo && state.undo.run ? state.undo : null;
  const exported = state.export && state.export.run ? state.export : null;
  const run = undo ? undo.run : exported ? exported.run : null;
  const box = $("task-progress");
  box.hidden = !run;
  if (!run) return;
  const bar = $("task-bar");
  const counting = run.sending || run.done;
  if (counting) {
    bar.max = Math.max(run.total, 1);
    bar.value = run.done;
  } else {
    bar.removeAttribute("value");  // how long the list takes to read is not known
  }
  let title;
  let text = "";
  if (undo && undo.phase === "planning") {
    title = "Reading the registrant list, to see what g2w-import registered…";
  } else if (undo) {
    title = run.stopping ? "Stopping: the cancellations under way finish…" : "Cancelling…";
    text = counting ? `${number(run.done)} of ${number(run.total)} done` : "Reading the registrant list…";
  } else {
    title = run.stopping ? "Stopping…" : "Reading the registrant list…";
    if (counting) text = `Answers read for ${number(run.done)} of ${number(run.total)} registrants`;
  }
  if (counting && run.left) text += ` · about ${run.left} left`;
  $("task-title").textContent = title;
  $("task-text").textContent = text;
  countList($("task-counts"), undo ? Object.entries(run.counts).map(([status, count]) => ({ status, count })) : []);
  $("task-stop").disabled = run.stopping;
  $("task-stop").textContent = run.stopping ? "Stopping…" : "Stop";
  $("task-hint").textContent = undo
    ? "Stop lets the cancellations under way finish; Undo this import again later cancels the rest, and nobody is cancelled twice."
    : "Stop keeps the list with the answers read so far.";
}

// --- wiring -----------------------------------------------------------------------------------

async function act(path) {
  actionError = "";
  say("action-error", "");
  try {
    render(await api("POST", path));
  } catch (error) {
    actionError = error.message;
    say("action-error", actionError);
  }
}

function register() { return act("/api/register"); }

function stop() { return act("/api/stop"); }

// --- what this computer keeps ----------------------------------------------------------------

// the journal whose Forget was pressed, waiting for a yes or a no
let forgetting = null;

async function loadJournals() {
  try {
    renderJournals(await api("GET", "/api/journals"));
  } catch (error) {
    say("forget-error", error.message);
  }
}

function journalName(journal) {
  return journal.subject ? `${journal.subject} (${journal.webinarKey})` : journal.webinarKey;
}

function renderJournals(data) {
  const rows = data.journals.map((journal) => {
    const row = element("tr");
    for (const text of [journalName(journal), journal.peopleText, journal.sizeText, journal.usedText, journal.endedText]) {
      row.append(element("td", text));
    }
    const button = element("button", "Forget…");
    button.type = "button";
    button.setAttribute("aria-label", `Forget the journal of ${journalName(journal)}`);
    button.addEventListener("click", () => askForget(journal));
    const cell = element("td");
    cell.append(button);
    row.append(cell);
    return row;
  });
  $("kept-rows").replaceChildren(...rows);
  $("kept-wrap").hidden = !rows.length;
  $("kept-none").hidden = rows.length > 0;
  $("kept-days").textContent = data.keepDays
    ? `Each journal is removed ${data.keepDays} days after its webinar is over.`
    : "Journals are kept until you forget them.";
}

function askForget(journal) {
  forgetting = journal;
  say("forget-error", "");
  say("forget-done", "");
  $("forget-question").textContent = `Forget the journal of ${journalName(journal)} (${journal.peopleText}) for good? The registrations at GoTo stay as they are, but Undo can no longer cancel them.`;
  $("forget-confirm").hidden = false;
  $("forget-question").focus();
}

async function confirmForget() {
  const journal = forgetting;
  keepJournal();
  if (!journal) return;
  try {
    const data = await api("POST", "/api/journals/forget", { webinar: journal.webinarKey });
    renderJournals(data);
    say("forget-done", data.said);
  } catch (error) {
    say("forget-error", error.message);
    loadJournals();
  }
}

function keepJournal() {
  forgetting = null;
  $("forget-confirm").hidden = true;
}

function wire() {
  $("signin-button").addEventListener("click", signIn);
  $("file").addEventListener("change", (event) => upload(event.target.files[0]));
  $("webinar").addEventListener("change", webinarChosen);
  $("other-use").addEventListener("click", otherKey);
  $("other-key").addEventListener("keydown", (event) => { if (event.key === "Enter") otherKey(); });
  $("register").addEventListener("click", register);
  $("stop").addEventListener("click", stop);
  $("undo-button").addEventListener("click", planUndo);
  $("undo-go").addEventListener("click", confirmUndo);
  $("undo-keep").addEventListener("click", keepRegistrations);
  $("export-button").addEventListener("click", exportList);
  $("forget-go").addEventListener("click", confirmForget);
  $("forget-keep").addEventListener("click", keepJournal);
  $("task-stop").addEventListener("click", () => task("/api/stop", undefined, lastState && lastState.undo && lastState.undo.run ? "undo" : "export"));
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    upload(event.dataTransfer.files[0]);
  });
  // A file dropped beside the drop zone must not replace the page with the file.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

wire();
loadSignIn();
loadWebinars();
refresh();
loadJournals();
