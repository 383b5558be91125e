(() => {
  const api = document.body.dataset.api;
  const $ = (s) => document.querySelector(s);
  const say = (t) => { $("#status").textContent = t; };
  const labels = {ctr: "Click-through", cart_rate: "Add-to-cart rate", attach_rate: "Attach rate at checkout",
                  revenue_per_session: "Attributed revenue / session", aov: "Average order value"};
  let key = sessionStorage.getItem("adminKey") || "", author = sessionStorage.getItem("author") || "";
  const call = async (path, opts = {}) => {
    const r = await fetch(api + path, {...opts, headers: {"Authorization": "Bearer " + key,
      "X-Author": author || "admin page", "Content-Type": "application/json"}});
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.detail || ("HTTP " + r.status));
    return body;
  };
  const cell = (tr, text, cls) => { const td = tr.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; };
  const fmt = (x) => (x === null || x === undefined || Number.isNaN(x)) ? "–" : (Math.abs(x) >= 100 ? x.toFixed(1) : x.toFixed(4));
  async function load() {
    const list = await call("");
    const tbody = $("#experiments tbody"); tbody.textContent = "";
    for (const e of list) {
      const tr = tbody.insertRow(); tr.dataset.name = e.name;
      cell(tr, e.name); cell(tr, e.status); cell(tr, e.placements.join(", "));
      cell(tr, e.variants.map(v => `${v.name} (${Math.round(v.share * 100)}%)`).join(", "));
      cell(tr, String(e.version));
      const td = tr.insertCell();
      const add = (label, fn) => { const b = document.createElement("button"); b.type = "button"; b.textContent = label; b.onclick = fn; td.append(b, " "); };
      add("Report", () => showReport(e.name));
      if (e.status === "draft") add("Start", () => act(e.name, "start", e.version));
      if (e.status === "running") add("Stop", () => act(e.name, "stop", e.version));
    }
  }
  async function act(name, what, version) {
    try { await call(`/${name}/${what}?base_version=${version}`, {method: "POST"}); say(`${name}: ${what} done`); await load(); }
    catch (err) { say(`${name}: ${err.message}`); }
  }
  async function showReport(name) {
    let rep;
    try { rep = await call(`/${name}/report`); } catch (err) { say(err.message); return; }
    $("#report").hidden = false;
    $("#report-h").textContent = `Report: ${rep.experiment} (control: ${rep.control})`;
    const srm = rep.srm;
    $("#srm").className = srm.flagged ? "flag" : "ok";
    $("#srm").textContent = srm.flagged
      ? `Sample ratio mismatch (chi² ${srm.chi2.toFixed(2)}, p = ${srm.p_value.toExponential(2)}): the split is broken, do not trust these numbers.`
      : `Split as configured (SRM check chi² ${srm.chi2.toFixed(2)}, p = ${srm.p_value.toFixed(3)}).`;
    const head = $("#metrics thead"); head.textContent = "";
    const hr = head.insertRow();
    ["Variant", "Units", "Impressions", ...Object.values(labels)].forEach(t => { const th = document.createElement("th"); th.scope = "col"; th.textContent = t; hr.append(th); });
    const body = $("#metrics tbody"); body.textContent = "";
    const diffs = $("#diffs tbody"); diffs.textContent = "";
    for (const v of rep.variants) {
      const tr = body.insertRow(); cell(tr, v.variant); cell(tr, String(v.units), "num"); cell(tr, String(v.impressions), "num");
      for (const m of Object.keys(labels)) cell(tr, fmt(v.metrics[m]), "num");
      for (const [m, d] of Object.entries(v.vs_control)) {
        const r = diffs.insertRow(); cell(r, v.variant); cell(r, labels[m] || m);
        cell(r, fmt(d.diff), "num"); cell(r, `[${fmt(d.ci_low)}, ${fmt(d.ci_high)}]`, "num");
        cell(r, Number.isFinite(d.relative) ? (d.relative * 100).toFixed(1) + "%" : "–", "num");
        cell(r, d.p_value.toFixed(4), "num");
        cell(r, d.significant ? "significant" : "not significant", d.significant ? "sig" : "ns");
      }
    }
    $("#needed").textContent = `Units per variant still needed to detect a ${Math.round(rep.minimum_effect * 100)}% change: ` +
      Object.entries(rep.units_needed).map(([m, n]) => `${labels[m] || m} ${Number.isFinite(n) ? Math.ceil(n).toLocaleString("en") : "∞"}`).join("; ");
    $("#unattributed").textContent = Object.keys(rep.unattributed).length
      ? "Unattributed events: " + Object.entries(rep.unattributed).map(([k, n]) => `${k.replaceAll("_", " ")} ${n}`).join(", ") : "";
  }
  async function enter() {
    try { await load(); $("#signin").hidden = true; $("#app").hidden = false; say(""); }
    catch (err) { say(`Sign-in failed: ${err.message}`); }
  }
  $("#signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault(); key = $("#key").value; author = $("#author").value;
    sessionStorage.setItem("adminKey", key); sessionStorage.setItem("author", author); enter();
  });
  if (key) enter();
})();
