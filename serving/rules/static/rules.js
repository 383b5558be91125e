// The merchandiser rules page: plain DOM, the /v1/rules API, no build step.
// Data is only ever inserted with textContent (never innerHTML), so rule text cannot inject markup.
(function () {
  "use strict";
  const API = document.body.dataset.api;
  const $ = (sel) => document.querySelector(sel);
  const state = { key: null, author: "", rules: [], editing: null, basket: [], draft: null };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "onclick") node.addEventListener("click", v);
      else if (k === "text") node.textContent = v;
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function status(message, ok) {
    const s = $("#status");
    s.textContent = message || "";
    s.className = ok === false ? "err" : "ok";
  }

  async function api(method, path, body, extra) {
    const headers = { Authorization: "Bearer " + state.key };
    if (state.author) headers["X-Author"] = state.author;
    Object.assign(headers, (extra && extra.headers) || {});
    const init = { method, headers };
    if (body !== undefined) {
      if (extra && extra.raw) { init.body = body; headers["Content-Type"] = extra.contentType || "text/plain"; }
      else { init.body = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
    }
    const res = await fetch(((extra && extra.base) || API) + path, init);
    let data = null;
    const type = res.headers.get("content-type") || "";
    if (type.includes("json")) data = await res.json(); else data = await res.text();
    return { ok: res.ok, status: res.status, data };
  }

  function detail(r) {
    if (r.data && typeof r.data === "object" && r.data.detail) return String(r.data.detail);
    return "request failed (" + r.status + ")";
  }

  // ---- effect: impressions, attach rate, revenue over the chosen window ------------------------
  const effectDays = () => Number($("#effect-window").value) || 7;
  const effectQuery = () => "effect=true&days=" + effectDays();
  const percent = (x) => (100 * x).toFixed(1) + "%";
  const money = (x) => x.toFixed(2);
  function effectCells(e) {
    if (!e) return [el("td", { class: "num", text: "–" }), el("td", { class: "num", text: "–" }), el("td", { class: "num", text: "–" })];
    return [
      el("td", { class: "num", "data-effect": "impressions", text: e.impressions }),
      el("td", { class: "num", "data-effect": "attach-rate", title: "of " + e.impressions + " shown: added to a cart " + e.added + ", bought " + e.bought, text: e.impressions ? percent(e.attach_rate) : "–" }),
      el("td", { class: "num", "data-effect": "revenue", text: money(e.revenue) }),
    ];
  }
  function effectSentence(e) {
    const span = "Over the last " + effectDays() + (effectDays() === 1 ? " day" : " days");
    if (!e.impressions && !e.baskets) return span + ": it did not act on any answer shown.";
    const n = (k, one, many) => k + " " + (k === 1 ? one : many);
    return span + ": shown " + n(e.impressions, "time", "times") + " in " + n(e.baskets, "basket", "baskets") +
      "; added to a cart " + n(e.added, "time", "times") + ", bought " + n(e.bought, "time", "times") +
      "; attach rate " + percent(e.attach_rate) + "; revenue " + money(e.revenue) + ".";
  }

  // ---- sign in -------------------------------------------------------------------------------
  async function signIn(key, author) {
    state.key = key; state.author = author || "";
    const r = await api("GET", "?" + effectQuery());
    if (!r.ok) {
      state.key = null;
      const msg = r.status === 403 ? "That key is not right." : detail(r);
      $("#err-key").textContent = msg;
      $("#key").setAttribute("aria-invalid", "true");
      $("#key").focus();
      return false;
    }
    sessionStorage.setItem("rules.key", key);
    sessionStorage.setItem("rules.author", state.author);
    $("#signin").hidden = true;
    $("#app").hidden = false;
    $("#sign-out").hidden = false;
    const who = $("#who"); who.hidden = false; who.textContent = "Signed in as " + (state.author || "merchandiser");
    state.rules = r.data.rules;
    renderRules();
    loadCategories();
    loadSuggestions();
    loadControls();
    status("Signed in. " + r.data.total + " rules.");
    return true;
  }

  $("#signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#err-key").textContent = ""; $("#key").removeAttribute("aria-invalid");
    const key = $("#key").value.trim();
    if (!key) { $("#err-key").textContent = "Enter the merchandiser key."; $("#key").setAttribute("aria-invalid", "true"); $("#key").focus(); return; }
    await signIn(key, $("#author").value.trim());
  });
  $("#sign-out").addEventListener("click", () => { sessionStorage.clear(); location.reload(); });

  // ---- rule list ------------------------------------------------------------------------------
  let rulesSeq = 0;
  async function loadRules() {
    const q = $("#search").value.trim();
    const seq = ++rulesSeq;
    const r = await api("GET", "?" + effectQuery() + (q ? "&q=" + encodeURIComponent(q) : ""));
    if (seq !== rulesSeq) return;  // a newer search was sent meanwhile: its answer wins
    if (!r.ok) { status(detail(r), false); return; }
    state.rules = r.data.rules;
    renderRules();
  }

  function renderRules() {
    const body = $("#rules-table tbody");
    body.replaceChildren();
    for (const item of state.rules) {
      const rule = item.rule;
      const name = el("td", {}, el("strong", { text: rule.name }), el("br"), el("code", { text: item.id }));
      if (item.problems && item.problems.length) name.append(el("br"), el("span", { class: "muted", text: item.problems.join("; ") }));
      body.append(el("tr", { class: rule.enabled ? "" : "disabled", "data-rule": item.id },
        name,
        el("td", { text: item.summary }),
        el("td", { text: rule.priority }),
        el("td", {}, el("span", { class: "badge " + (rule.enabled ? "on" : "off"), text: rule.enabled ? "enabled" : "disabled" })),
        el("td", { text: item.version }),
        ...effectCells(item.effect),
        el("td", {},
          el("button", { type: "button", class: "secondary", onclick: () => openEditor(item), "aria-label": "Edit " + item.id }, "Edit"), " ",
          el("button", { type: "button", class: "secondary", onclick: () => toggle(item), "aria-label": (rule.enabled ? "Disable " : "Enable ") + item.id }, rule.enabled ? "Disable" : "Enable"), " ",
          el("button", { type: "button", class: "secondary", onclick: () => showHistory(item.id), "aria-label": "History of " + item.id }, "History"))));
    }
    $("#rules-empty").hidden = state.rules.length > 0;
  }

  let searchTimer = null;
  $("#search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(loadRules, 200); });

  async function toggle(item) {
    const action = item.rule.enabled ? "disable" : "enable";
    const r = await api("POST", "/" + encodeURIComponent(item.id) + "/" + action, undefined, { headers: { "If-Match": '"' + item.version + '"' } });
    if (r.status === 409) { status(detail(r), false); await loadRules(); return; }
    if (!r.ok) { status(detail(r), false); return; }
    await loadRules();
    status("Rule " + item.id + " " + action + "d (version " + r.data.version + ").");
  }

  // ---- editor ---------------------------------------------------------------------------------
  const LISTS = ["trigger.categories", "trigger.skus", "trigger.styles", "unless", "suggest.categories", "suggest.skus", "tags"];
  const fields = () => Array.from(document.querySelectorAll("#rule-form [data-field]"));
  const getPath = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  function setPath(obj, path, value) {
    const parts = path.split("."); let o = obj;
    for (const p of parts.slice(0, -1)) { o[p] = o[p] || {}; o = o[p]; }
    o[parts[parts.length - 1]] = value;
  }
  const splitList = (text) => text.split(",").map((x) => x.trim()).filter(Boolean);

  function openEditor(item) {
    clearErrors();
    $("#rule-form").reset();
    state.editing = item ? { id: item.id, version: item.version } : null;
    $("#editor-h").textContent = item ? "Edit rule " + item.id + " (version " + item.version + ")" : "New rule";
    $("#f-id").readOnly = !!item;
    const conflict = $("#conflict"); if (conflict) conflict.remove();
    if (item) fillForm(item.rule);
    $("#editor-sec").hidden = false;
    $("#history-sec").hidden = true;
    $("#f-" + (item ? "name" : "id")).focus();
  }

  function fillForm(rule) {
    for (const input of fields()) {
      const path = input.dataset.field;
      const value = getPath(rule, path);
      if (input.type === "checkbox") input.checked = !!value;
      else if (path === "trigger.attributes") input.value = (value || []).map((a) => a.key + "=" + a.value).join(", ");
      else if (LISTS.includes(path)) input.value = (value || []).join(", ");
      else if (path === "valid_from" || path === "valid_to") input.value = value ? value.slice(0, 16) : "";
      else input.value = value === null || value === undefined ? "" : value;
    }
    for (const box of document.querySelectorAll("input[name=placements]")) box.checked = (rule.placements || []).includes(box.value);
  }

  function formToDoc() {
    const doc = { trigger: {}, suggest: { constraints: {} } };
    for (const input of fields()) {
      const path = input.dataset.field;
      let value;
      if (input.type === "checkbox") value = input.checked;
      else if (path === "trigger.attributes") {
        value = splitList(input.value).map((pair) => { const i = pair.indexOf("="); return i < 0 ? { key: pair, value: "" } : { key: pair.slice(0, i).trim(), value: pair.slice(i + 1).trim() }; });
      } else if (LISTS.includes(path)) value = splitList(input.value);
      else if (input.type === "number") { if (input.value === "") continue; value = Number(input.value); }
      else if (input.type === "datetime-local") { if (!input.value) continue; value = input.value + ":00Z"; }
      else { value = input.value.trim(); if (value === "" && (path === "reason" || path === "description")) continue; }
      setPath(doc, path, value);
    }
    doc.placements = Array.from(document.querySelectorAll("input[name=placements]:checked")).map((b) => b.value);
    return doc;
  }

  function clearErrors() {
    for (const e of document.querySelectorAll("#rule-form .error")) e.textContent = "";
    for (const i of document.querySelectorAll("#rule-form [aria-invalid]")) i.removeAttribute("aria-invalid");
    const box = $("#editor-errors"); box.hidden = true; box.replaceChildren();
  }

  function fieldFor(path) {
    let base = path.replace(/\[\d+\]/g, "").replace(/\.(key|value)$/, "");
    if (base === "trigger") base = "trigger.categories";
    if (base === "suggest") base = "suggest.categories";
    if (base.startsWith("trigger.attributes")) base = "trigger.attributes";
    return base;
  }

  function showErrors(errors) {
    clearErrors();
    const box = $("#editor-errors");
    box.append(el("p", { text: "The rule was not saved. Fix " + (errors.length === 1 ? "this problem" : "these " + errors.length + " problems") + ":" }));
    const list = el("ul");
    let first = null;
    for (const err of errors) {
      const base = fieldFor(err.path);
      const slot = document.getElementById("err-" + base.replace(/\./g, "-"));
      const input = document.querySelector('#rule-form [data-field="' + base + '"]');
      if (slot) slot.textContent = (slot.textContent ? slot.textContent + " " : "") + err.message;
      if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
      const link = el("a", { href: input ? "#" + input.id : "#rule-form", text: (err.path || "rule") + ": " + err.message });
      list.append(el("li", {}, link));
    }
    box.append(list);
    box.hidden = false;
    box.focus();
    return first;
  }

  async function save(e) {
    e.preventDefault();
    const doc = formToDoc();
    let r;
    if (state.editing) {
      r = await api("PUT", "/" + encodeURIComponent(state.editing.id), doc, { headers: { "If-Match": '"' + state.editing.version + '"' } });
    } else {
      r = await api("POST", "", doc);
    }
    if (r.status === 422) { showErrors(r.data.errors || [{ path: "", message: detail(r) }]); status("Not saved: fix the marked fields.", false); return; }
    if (r.status === 409) { showConflict(r.data); return; }
    if (!r.ok) { status(detail(r), false); return; }
    clearErrors();
    $("#editor-sec").hidden = true;
    state.editing = null;
    await loadRules();
    await loadSuggestions();  // what the rules cover changed
    const warn = (r.data.warnings || []).length ? " Overlaps: " + r.data.warnings.join("; ") + "." : "";
    status("Saved " + r.data.id + " (version " + r.data.version + ")." + warn);
  }
  $("#rule-form").addEventListener("submit", save);

  function showConflict(data) {
    const old = $("#conflict"); if (old) old.remove();
    const current = data.current;
    const box = el("div", { id: "conflict", class: "conflict", role: "alert", tabindex: "-1" },
      el("p", {}, el("strong", { text: "Not saved: someone else changed this rule. " }), data.detail || ""),
      el("p", { text: "Your edit is still in the form. Load the current version to see their change, then apply yours again." }));
    if (current) box.append(el("button", { type: "button", onclick: () => { box.remove(); openEditor(current); } }, "Load the current version (" + current.version + ")"));
    $("#editor-sec").insertBefore(box, $("#rule-form"));
    box.focus();
    status("Edit refused: the rule changed meanwhile (version conflict).", false);
    loadRules();
  }

  $("#validate").addEventListener("click", async () => {
    const r = await api("POST", "/validate", formToDoc());
    if (!r.ok) { status(detail(r), false); return; }
    if (!r.data.valid) { showErrors(r.data.errors); status("The rule has problems.", false); return; }
    clearErrors();
    const extra = r.data.problems.length ? " Note: " + r.data.problems.join("; ") : "";
    status("Looks good: " + r.data.summary + "." + extra);
  });
  $("#new-rule").addEventListener("click", () => openEditor(null));
  $("#cancel").addEventListener("click", () => { clearErrors(); $("#editor-sec").hidden = true; state.editing = null; });
  $("#preview-draft").addEventListener("click", () => {
    state.draft = formToDoc();
    const note = $("#preview-draft-note");
    note.hidden = false;
    note.textContent = "Previewing your unsaved rule '" + (state.draft.id || "(no id)") + "' together with the stored rules.";
    location.hash = "#preview-sec";
    $("#product-search").focus();
  });

  // ---- history --------------------------------------------------------------------------------
  function changesText(v) {
    if (!v.diff || !v.diff.length) return v.changes.join(", ");
    return v.diff.map((d) => d.field + ": " + JSON.stringify(d.old) + " → " + JSON.stringify(d.new)).join("; ");
  }
  async function showHistory(id) {
    const r = await api("GET", "/" + encodeURIComponent(id) + "/history");
    if (!r.ok) { status(detail(r), false); return; }
    const h = r.data;
    state.historyId = id;
    $("#history-h").textContent = "History of " + id;
    showRuleEffect(id);
    const body = $("#history-table tbody");
    body.replaceChildren();
    for (const v of h.versions) {
      const action = el("td");
      if (v.rule && v.version !== h.current_version) {
        action.append(el("button", { type: "button", class: "secondary", onclick: () => rollback(id, v.version, h.versions[0].version), "aria-label": "Roll back " + id + " to version " + v.version }, "Roll back to this version"));
      } else if (v.version === h.current_version) action.textContent = "current";
      body.append(el("tr", {}, el("td", { text: v.version }), el("td", { text: v.action }), el("td", { text: v.author }),
        el("td", { text: v.at.replace("T", " ").slice(0, 19) }), el("td", { text: changesText(v) }), action));
    }
    $("#history-sec").hidden = false;
    $("#history-h").scrollIntoView();
    $("#close-history").focus();
  }
  async function showRuleEffect(id) {
    const out = $("#history-effect");
    const r = await api("GET", "/" + encodeURIComponent(id) + "/effect?days=" + effectDays());
    out.textContent = r.ok ? effectSentence(r.data) : detail(r);
  }
  $("#effect-window").addEventListener("change", async () => {
    await loadRules();
    await loadControls();
    if (!$("#history-sec").hidden && state.historyId) await showRuleEffect(state.historyId);
    if (state.controlHistoryId) await controlHistory(state.controlHistoryId);
    status("Effect shown over the last " + effectDays() + (effectDays() === 1 ? " day." : " days."));
  });
  async function rollback(id, to, base) {
    const r = await api("POST", "/" + encodeURIComponent(id) + "/rollback", { to_version: to, version: base });
    if (!r.ok) { status(detail(r), false); return; }
    await loadRules();
    await showHistory(id);
    status("Rolled " + id + " back to version " + to + " (now version " + r.data.version + ").");
  }
  $("#close-history").addEventListener("click", () => { $("#history-sec").hidden = true; });

  // ---- preview --------------------------------------------------------------------------------
  async function searchProducts() {
    const q = $("#product-search").value.trim();
    const list = $("#product-results");
    list.replaceChildren();
    if (!q) return;
    const r = await api("GET", "/products?limit=10&q=" + encodeURIComponent(q));
    if (!r.ok) { list.append(el("li", { text: detail(r) })); return; }
    if (!r.data.items.length) list.append(el("li", { text: "No product matches." }));
    for (const p of r.data.items) {
      list.append(el("li", {}, el("button", { type: "button", class: "secondary", onclick: () => addToBasket(p), "aria-label": "Add " + p.title + " to the basket" }, "Add"),
        " " + p.title + " — " + (p.category || "no category") + ", " + p.price.toFixed(2) + (p.in_stock ? "" : " (out of stock)")));
    }
  }
  $("#product-search-go").addEventListener("click", searchProducts);
  $("#product-search").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); searchProducts(); } });

  function addToBasket(p) {
    const line = state.basket.find((l) => l.sku === p.sku);
    if (line) line.quantity += 1; else state.basket.push({ sku: p.sku, title: p.title, quantity: 1 });
    renderBasket();
  }
  function renderBasket() {
    const list = $("#basket");
    list.replaceChildren();
    state.basket.forEach((line, i) => {
      const qty = el("input", { type: "number", min: "1", value: line.quantity, id: "qty-" + i, style: "min-width:4rem;width:5rem" });
      qty.addEventListener("change", () => { line.quantity = Math.max(1, Number(qty.value) || 1); });
      list.append(el("li", {}, el("label", { for: "qty-" + i, text: line.title }), qty, " ",
        el("button", { type: "button", class: "secondary", onclick: () => { state.basket.splice(i, 1); renderBasket(); }, "aria-label": "Remove " + line.title }, "Remove")));
    });
    if (!state.basket.length) list.append(el("li", { class: "muted", text: "Empty: search and add products." }));
  }

  $("#preview-go").addEventListener("click", async () => {
    const out = $("#preview-result");
    out.replaceChildren();
    if (!state.basket.length) { out.append(el("p", { text: "Add at least one product to the basket." })); return; }
    const body = { basket: state.basket.map((l) => ({ sku: l.sku, quantity: l.quantity })), page: $("#preview-page").value };
    if (state.draft) body.draft = state.draft;
    if (state.draftControl) body.draft_control = state.draftControl;
    const r = await api("POST", "/preview", body);
    if (r.status === 422 && r.data.errors) { out.append(el("p", { class: "error", text: r.data.detail })); return; }
    if (!r.ok) { out.append(el("p", { class: "error", text: detail(r) })); return; }
    const d = r.data;
    if (d.style && d.style.top) out.append(el("p", { text: "Basket style: " + d.style.top + " (confidence " + d.style.confidence + ")" }));
    out.append(el("h3", { text: "Checkout would show" }));
    const acc = el("ul", { id: "preview-accessories" });
    for (const a of d.accessories) acc.append(el("li", {}, el("strong", { text: a.title }), " — " + a.price.toFixed(2) + " — “" + a.reason + "” (rule " + a.rule_id + ")"));
    if (!d.accessories.length) acc.append(el("li", { class: "muted", text: "No accessory slots for this basket." }));
    out.append(acc);
    out.append(el("h3", { text: "Rules that fire (" + d.fired.length + ")" }));
    const fired = el("ol", { id: "preview-fired" });
    for (const f of d.fired) {
      fired.append(el("li", {}, el("strong", { text: f.name }), " (" + f.rule_id + ", priority " + f.priority + ", " + f.max_items + " slot(s), " + f.candidate_count + " candidate items): " + f.reason));
    }
    if (!d.fired.length) fired.append(el("li", { class: "muted", text: "No rule fires." }));
    out.append(fired);
    if (d.items.length) {
      out.append(el("h3", { text: "Recommended items" }));
      const items = el("ol", { id: "preview-items" });
      for (const it of d.items) items.append(el("li", { text: it.title + " — " + it.reason }));
      out.append(items);
    }
    if (d.unknown_skus.length) out.append(el("p", { class: "muted", text: "Not in the catalog: " + d.unknown_skus.join(", ") }));
    if (d.note) out.append(el("p", { class: "muted", text: d.note }));
  });

  // ---- suggestions, categories, export ---------------------------------------------------------
  const SG_PAGE = 25;
  let sgOffset = 0;
  function suggestionQuery() {
    const q = new URLSearchParams({ limit: SG_PAGE, offset: sgOffset, sort: $("#sg-sort").value });
    if ($("#sg-uncovered").checked) q.set("uncovered", "true");
    const cat = $("#sg-category").value.trim();
    if (cat) q.set("category", cat);
    if (Number($("#sg-min-lift").value) > 0) q.set("min_lift", $("#sg-min-lift").value);
    if (Number($("#sg-min-forgotten").value) > 0) q.set("min_forgotten", $("#sg-min-forgotten").value);
    return q.toString();
  }
  async function loadSuggestions() {
    const r = await api("GET", "/suggestions?" + suggestionQuery());
    const body = $("#suggestions-table tbody");
    body.replaceChildren();
    if (!r.ok) { status(detail(r), false); return; }
    for (const sg of r.data.suggestions) {
      const name = sg.anchor + " => " + sg.accessory;
      const action = el("td");
      if (sg.accepted) action.textContent = "accepted";
      else if (sg.covered_by.length) action.append(el("span", { class: "muted", text: "covered by " + sg.covered_by.join(", ") }));
      else {
        for (const rid of sg.extends) {
          action.append(el("button", { type: "button", onclick: () => accept(sg.id, rid), "aria-label": "Add " + name + " to rule " + rid }, "Add to " + rid), " ");
        }
        action.append(el("button", { type: "button", onclick: () => accept(sg.id), "aria-label": "Accept " + name }, sg.extends.length ? "New rule" : "Accept as rule"));
      }
      body.append(el("tr", { "data-suggestion": sg.id }, el("td", { text: name }), el("td", { text: sg.signal }), el("td", { text: sg.sentence }), action));
    }
    const n = r.data.suggestions.length;
    $("#suggestions-empty").hidden = n > 0;
    $("#suggestions-count").textContent = n ? "Showing " + (sgOffset + 1) + "–" + (sgOffset + n) + " of " + r.data.total + "." : "";
    $("#sg-prev").disabled = sgOffset === 0;
    $("#sg-next").disabled = sgOffset + n >= r.data.total;
  }
  $("#suggestion-filters").addEventListener("submit", (ev) => { ev.preventDefault(); sgOffset = 0; loadSuggestions(); });
  $("#sg-prev").addEventListener("click", () => { sgOffset = Math.max(0, sgOffset - SG_PAGE); loadSuggestions(); });
  $("#sg-next").addEventListener("click", () => { sgOffset += SG_PAGE; loadSuggestions(); });
  async function accept(id, into) {
    let path = "/suggestions/" + encodeURIComponent(id) + "/accept";
    if (into) {
      const rule = state.rules.find((x) => x.id === into);
      path += "?into=" + encodeURIComponent(into) + (rule ? "&version=" + rule.version : "");
    }
    const r = await api("POST", path);
    if (!r.ok) { status(detail(r), false); return; }
    await loadSuggestions();
    await loadRules();
    status(into ? "Added to rule " + r.data.id + " (version " + r.data.version + ")."
      : "Accepted: rule " + r.data.id + " created (version " + r.data.version + ").");
  }
  async function loadCategories() {
    const r = await api("GET", "/categories");
    if (!r.ok) return;
    const list = $("#category-list");
    list.replaceChildren(...r.data.categories.map((c) => el("option", { value: c })));
  }
  $("#export").addEventListener("click", async () => {
    const r = await api("GET", "/export");
    if (!r.ok) { status(detail(r), false); return; }
    const url = URL.createObjectURL(new Blob([r.data], { type: "application/yaml" }));
    const a = el("a", { href: url, download: "rules.yaml" });
    document.body.append(a); a.click(); a.remove();
    status("Exported " + state.rules.length + " rules.");
  });


  // ---- answer controls -------------------------------------------------------------------------
  const CONTROLS = document.body.dataset.controls;
  const capi = (method, path, body, extra) => api(method, path, body, Object.assign({}, extra, { base: CONTROLS }));
  const list = (v) => v.split(",").map((x) => x.trim()).filter(Boolean);
  async function loadControls() {
    const r = await capi("GET", "?" + effectQuery());
    const body = $("#controls-table tbody");
    body.replaceChildren();
    if (!r.ok) { status(detail(r), false); return; }
    for (const c of r.data.controls) {
      const d = c.control;
      const when = (d.valid_from || d.valid_to) ? (d.valid_from || "…").slice(0, 16) + " – " + (d.valid_to || "…").slice(0, 16) : "always";
      const toggle = d.enabled ? "Disable" : "Enable";
      body.append(el("tr", { "data-control": c.id }, el("td", { text: c.id }), el("td", { text: c.summary + (d.enabled ? "" : " (disabled)") }),
        el("td", { text: d.placements.join(", ") }), el("td", { text: when }), el("td", { text: d.priority }),
        ...effectCells(c.effect),
        el("td", {},
          el("button", { type: "button", class: "secondary", "aria-label": toggle + " control " + c.id, onclick: () => toggleControl(c, !d.enabled) }, toggle), " ",
          el("button", { type: "button", class: "secondary", "aria-label": "History of control " + c.id, onclick: () => controlHistory(c.id) }, "History"), " ",
          el("button", { type: "button", class: "secondary", "aria-label": "Delete control " + c.id, onclick: () => deleteControl(c) }, "Delete"))));
    }
    $("#controls-empty").hidden = r.data.controls.length > 0;
  }
  function controlDocument() {
    const num = (id) => ($(id).value === "" ? null : Number($(id).value));
    const target = { skus: list($("#c-skus").value), categories: list($("#c-categories").value), styles: list($("#c-styles").value), attributes: [] };
    const attr = $("#c-attribute").value.trim();
    if (attr) { const [key, ...rest] = attr.split("="); target.attributes.push({ key: key.trim(), value: rest.join("=").trim() }); }
    const utc = (id) => ($(id).value ? $(id).value + ":00Z" : null);
    return {
      id: $("#c-id").value.trim(), name: $("#c-name").value.trim(), action: $("#c-action").value, target,
      position: num("#c-position"), multiplier: num("#c-multiplier"), shift: num("#c-shift"),
      placements: list($("#c-placements").value), priority: num("#c-priority") || 0,
      valid_from: utc("#c-valid_from"), valid_to: utc("#c-valid_to"),
    };
  }
  function showControlErrors(r) {
    const ul = $("#control-errors");
    ul.replaceChildren();
    for (const e of (r.data && r.data.errors) || [{ path: "", message: detail(r) }]) ul.append(el("li", { text: (e.path ? e.path + ": " : "") + e.message }));
  }
  $("#control-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await capi("POST", "", controlDocument());
    if (!r.ok) { showControlErrors(r); status("Control not saved: " + detail(r), false); return; }
    $("#control-errors").replaceChildren();
    await loadControls();
    status("Saved control " + r.data.id + " (version " + r.data.version + ").");
  });
  $("#control-preview").addEventListener("click", () => {
    state.draftControl = controlDocument();
    $("#preview-go").click();
    $("#preview-sec").scrollIntoView();
  });
  async function toggleControl(c, enable) {
    const r = await capi("POST", "/" + encodeURIComponent(c.id) + (enable ? "/enable" : "/disable") + "?version=" + c.version);
    if (!r.ok) { status(detail(r), false); await loadControls(); return; }
    await loadControls();
    status((enable ? "Enabled" : "Disabled") + " control " + c.id + " (version " + r.data.version + ").");
  }
  async function deleteControl(c) {
    const r = await capi("DELETE", "/" + encodeURIComponent(c.id) + "?version=" + c.version);
    if (!r.ok) { status(detail(r), false); await loadControls(); return; }
    await loadControls();
    status("Deleted control " + c.id + " (kept in its history).");
  }
  async function controlHistory(id) {
    await loadControls();  // someone else may have changed it
    const r = await capi("GET", "/" + encodeURIComponent(id) + "/history");
    const out = $("#control-history");
    out.replaceChildren();
    if (!r.ok) { status(detail(r), false); return; }
    state.controlHistoryId = id;
    out.append(el("h3", { text: "History of control " + id }));
    const eff = await capi("GET", "/" + encodeURIComponent(id) + "/effect?days=" + effectDays());
    out.append(el("p", { id: "control-effect", text: eff.ok ? effectSentence(eff.data) : detail(eff) }));
    const ol = el("ul", { id: "control-history-list" });
    for (const v of r.data.versions) ol.append(el("li", { text: "v" + v.version + " " + v.action + " by " + v.author + " at " + v.at.replace("T", " ").slice(0, 19) + ": " + changesText(v) }));
    out.append(ol);
  }

  // ---- replay --------------------------------------------------------------------------------
  async function replay(body) {
    const out = $("#replay-result");
    out.replaceChildren(el("p", { class: "muted", text: "Replaying…" }));
    body.days = Number($("#replay-days").value) || 7;
    body.page = $("#replay-page").value;
    const r = await api("POST", "/replay", body);
    out.replaceChildren();
    $("#replay-sec").scrollIntoView();
    if (!r.ok) { out.append(el("p", { class: "error", text: detail(r) })); return; }
    const d = r.data;
    const pct = (x) => (100 * x).toFixed(1) + "%";
    const products = (items) => { const ul = el("ul"); for (const p of items) ul.append(el("li", { text: p.title + " (" + (p.category || "?") + "): " + p.count })); return ul; };
    out.append(el("p", { id: "replay-summary", text: d.baskets + " baskets from the last " + d.days + " days." + (d.note ? " " + d.note : "") }));
    if (d.rule) {
      out.append(el("h3", { text: "Rule " + d.rule.rule_id }),
        el("p", { id: "replay-rule-share", text: "Fires on " + d.rule.fired + " baskets (" + pct(d.rule.fired_share) + ")." }));
      if (d.rule.most_shown.length) out.append(el("p", { text: "Would show most often:" }), products(d.rule.most_shown));
      for (const o of d.rule.overlaps) out.append(el("p", { class: "warn", text: "Overlaps " + o.rule_id + " on " + o.baskets + " baskets (" + o.categories.join(", ") + ")." }));
      for (const e of d.rule.evidence) out.append(el("p", { class: "muted", text: e.sentence }));
    }
    if (d.control) {
      out.append(el("h3", { text: "Control " + d.control.control_id }),
        el("p", { id: "replay-control-share", text: "Changes " + d.control.acted + " of " + d.control.answers + " answers (" + pct(d.control.acted_share) + ")." }));
      if (d.control.most_affected.length) out.append(el("p", { text: "Items it acts on most:" }), products(d.control.most_affected));
    }
  }
  $("#replay-rule").addEventListener("click", () => replay({ draft: formToDoc() }));
  $("#replay-control").addEventListener("click", () => replay({ draft_control: controlDocument() }));

  renderBasket();
  const savedKey = sessionStorage.getItem("rules.key");
  if (savedKey) signIn(savedKey, sessionStorage.getItem("rules.author") || "");
})();
