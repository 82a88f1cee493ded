// The steward console: the review queue and golden records, through the documented routes only.
// Every value a source sent is attacker-controlled: it reaches the page as text
// (textContent, never as markup), and the Content-Security-Policy allows no other script.
"use strict";
(function () {
  // The API's base: the page is served at {base}/console (base is the stage prefix, if any).
  const base = location.pathname.replace(/\/console\/?$/, "");
  let token = ""; // in memory only: never stored
  let current = null; // what to reload after a 412: a function

  const $ = (id) => document.getElementById(id);
  const entity = () => $("entity").value.trim() || "customer";

  // An element with attributes and children; strings become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function status(text, error) {
    $("status").textContent = text;
    $("status").className = error ? "error" : "";
  }

  function show(...nodes) {
    $("view").replaceChildren(...nodes);
  }

  const seg = (s) => encodeURIComponent(s);

  async function api(method, path, opts) {
    const headers = { accept: "application/json" };
    if (token) headers.authorization = "Bearer " + token;
    if (opts && opts.ifMatch !== undefined) headers["if-match"] = '"' + opts.ifMatch + '"';
    let body;
    if (opts && opts.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    const r = await fetch(base + path, { method, headers, body, credentials: "omit" });
    let data = null;
    try {
      data = await r.json();
    } catch (_) {
      data = null;
    }
    return { status: r.status, body: data };
  }

  function problem(r) {
    const e = r.body && r.body.error;
    return e ? e.code + ": " + e.message : "HTTP " + r.status;
  }

  // An action that changes a golden record: a 412 means someone changed it meanwhile.
  async function act(method, path, body, version, done) {
    const r = await api(method, path, { body, ifMatch: version });
    if (r.status === 412) {
      status("Changed meanwhile: the page was reloaded with the current version. Check it and try again.", true);
      if (current) await current();
      return null;
    }
    if (r.status >= 400) {
      status(problem(r), true);
      return null;
    }
    await done(r.body);
    return r.body;
  }

  function reasonOf(input) {
    const reason = input.value.trim();
    if (!reason) {
      status("Give a reason: it is recorded with the change.", true);
      input.focus();
      return null;
    }
    return reason;
  }

  // ---- review queue ----

  async function showQueue() {
    current = showQueue;
    const r = await api("GET", "/v1/reviews?entity=" + seg(entity()) + "&status=open&limit=100");
    if (r.status !== 200) return status(problem(r), true);
    const items = r.body.items || [];
    status(items.length + " open review task" + (items.length === 1 ? "" : "s") + " (" + entity() + "), oldest first");
    const rows = items.map((t) =>
      el("tr", { dataset: { task: t.taskId } },
        el("td", {}, t.openedAt, el("div", { class: "muted" }, ageText(t.ageSeconds))),
        el("td", {}, t.record.system + " / " + t.record.sourceId),
        el("td", {}, nameOf(t.record.attributes)),
        el("td", {}, fmt(t.score)),
        el("td", {}, String(t.candidates.length)),
        el("td", {}, el("button", { type: "button", class: "open-task", onclick: () => showTask(t) }, "Review")),
      ));
    show(el("section", {}, el("h2", {}, "Review queue"),
      el("table", { id: "queue" },
        el("thead", {}, el("tr", {}, ["Opened", "Record", "Name", "Score", "Candidates", ""].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows))));
  }

  function ageText(s) {
    if (s < 120) return s + " s ago";
    if (s < 7200) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  function nameOf(attrs) {
    if (!attrs) return "";
    return [attrs.given_name, attrs.family_name, attrs.name].filter(Boolean).join(" ");
  }

  const fmt = (n) => (typeof n === "number" ? n.toFixed(1) : "");

  async function reloadTask(taskId) {
    const r = await api("GET", "/v1/reviews?entity=" + seg(entity()) + "&status=open&limit=100");
    const t = r.status === 200 && (r.body.items || []).find((x) => x.taskId === taskId);
    if (t) showTask(t);
    else showQueue();
  }

  function showTask(t) {
    current = () => reloadTask(t.taskId);
    const names = new Set(Object.keys(t.record.attributes || {}));
    for (const c of t.candidates) for (const k of Object.keys((c.golden && c.golden.attributes) || {})) names.add(k);
    const head = el("tr", {}, el("th", { scope: "col" }, "Attribute"),
      el("th", { scope: "col" }, "Record " + t.record.system + " / " + t.record.sourceId),
      t.candidates.map((c, i) => el("th", { scope: "col" }, "Candidate " + (i + 1) + ": " + c.goldenId,
        el("div", { class: "muted" }, "score " + fmt(c.score) + (c.band ? " · " + c.band : "") + (c.blockedBy ? " · held by " + c.blockedBy : "")))));
    const rows = [...names].sort().map((name) => el("tr", {},
      el("th", { scope: "row" }, name),
      el("td", {}, (t.record.attributes || {})[name] || ""),
      t.candidates.map((c) => {
        const value = ((c.golden && c.golden.attributes) || {})[name] || "";
        const why = (c.explanation || []).find((e) => e.attribute === name);
        const cls = !why ? "" : why.weight > 0 ? "agree" : why.weight < 0 ? "disagree" : "partial";
        return el("td", { class: cls }, value, why ? el("div", { class: "muted" }, why.level + " · " + fmt(why.weight)) : null);
      })));
    const reason = el("input", { id: "reason", size: 50, "aria-required": "true" });
    const choices = t.candidates.map((c, i) => el("label", {},
      el("input", { type: "radio", name: "candidate", value: c.goldenId, checked: i === 0 }), " candidate " + (i + 1) + " (" + c.goldenId + ")"));
    const version = t.holder.golden && t.holder.golden.version;
    const decide = (decision) => async () => {
      const why = reasonOf(reason);
      if (!why) return;
      const body = { decision, reason: why };
      if (decision === "link") {
        const chosen = document.querySelector("input[name=candidate]:checked");
        if (!chosen) return status("Choose the candidate to link.", true);
        body.goldenId = chosen.value;
      }
      await act("POST", "/v1/reviews/" + seg(t.taskId), body, version, async (res) => {
        status(decision === "link" ? "Linked: the record is in golden record " + res.goldenId + " now." : "Kept apart from every candidate.");
        if (decision === "link") await showGolden(res.goldenId);
        else await showQueue();
      });
    };
    show(el("section", {},
      el("h2", {}, "Review " + t.taskId),
      el("p", {}, "Held by golden record ", el("a", { href: "#", onclick: (e) => { e.preventDefault(); showGolden(t.holder.goldenId); } }, t.holder.goldenId),
        " · opened " + t.openedAt + " · score " + fmt(t.score)),
      el("table", { id: "compare" }, el("thead", {}, head), el("tbody", {}, rows)),
      el("fieldset", {}, el("legend", {}, "Decision"),
        el("div", { class: "row" }, choices),
        el("div", { class: "row" }, el("label", { for: "reason" }, "Reason"), reason),
        el("div", { class: "row" },
          el("button", { type: "button", id: "link", onclick: decide("link") }, "Link"),
          el("button", { type: "button", id: "keep-apart", onclick: decide("distinct") }, "Keep apart"),
          el("button", { type: "button", onclick: showQueue }, "Back to the queue")))));
    reason.focus();
  }

  // ---- golden record ----

  async function showGolden(id) {
    current = () => showGolden(id);
    const e = entity();
    const r = await api("GET", "/v1/golden/" + seg(e) + "/" + seg(id));
    if (r.status !== 200) return status(problem(r), true);
    let g = r.body;
    if (g.status === "merged" && g.mergedInto) {
      status("Golden record " + id + " was merged into " + g.mergedInto + ": showing that one.");
      return showGolden(g.mergedInto);
    }
    const pins = new Map((g.pins || []).map((p) => [p.attribute, p]));
    const reason = el("input", { id: "reason", size: 50, "aria-required": "true" });
    const path = "/v1/golden/" + seg(e) + "/" + seg(g.goldenId);
    const reload = async () => showGolden(g.goldenId);

    const attrRows = Object.entries(g.attributes || {}).map(([name, a]) => {
      const input = el("input", { "aria-label": "value to pin on " + name, name: "pin-" + name, value: a.value, size: 24 });
      const pinned = pins.get(name);
      return el("tr", { dataset: { attribute: name }, class: pinned ? "pinned" : "" },
        el("th", { scope: "row" }, name),
        el("td", { class: "value" }, a.value, a.valid === false ? el("div", { class: "muted" }, "failed validation") : null),
        el("td", {}, a.source || ""), el("td", {}, a.sourceId || ""), el("td", {}, a.rule || ""),
        el("td", {}, pinned ? "pinned by " + pinned.actor + ": " + pinned.reason : ""),
        el("td", {}, input,
          el("button", { type: "button", class: "pin", onclick: async () => {
            const why = reasonOf(reason);
            if (!why) return;
            await act("PUT", path + "/pins/" + seg(name), { value: input.value, reason: why }, g.version, async () => {
              status("Pinned " + name + ".");
              await reload();
            });
          } }, "Pin"),
          pinned ? el("button", { type: "button", class: "unpin", onclick: async () => {
            const why = reasonOf(reason);
            if (!why) return;
            await act("DELETE", path + "/pins/" + seg(name), { reason: why }, g.version, async () => {
              status("Unpinned " + name + ".");
              await reload();
            });
          } }, "Unpin") : null));
    });

    const memberRows = (g.sources || []).map((m) => {
      const whyCell = el("td", { class: "why" });
      return el("tr", { dataset: { system: m.system, sourceId: m.sourceId } },
        el("td", {}, el("input", { type: "checkbox", class: "member", "aria-label": "split off " + m.system + " / " + m.sourceId })),
        el("td", {}, m.system), el("td", {}, m.sourceId), whyCell,
        el("td", {}, el("button", { type: "button", onclick: async () => {
          const w = await api("GET", path + "/why/" + seg(m.system) + "/" + seg(m.sourceId));
          if (w.status !== 200) return status(problem(w), true);
          const b = w.body;
          const parts = [b.how];
          if (b.rule) parts.push("rule " + b.rule);
          if (typeof b.score === "number") parts.push("score " + fmt(b.score));
          if (b.actor) parts.push("by " + b.actor + (b.reason ? ": " + b.reason : ""));
          whyCell.replaceChildren(parts.join(" · "));
        } }, "Why")));
    });

    const split = async () => {
      const why = reasonOf(reason);
      if (!why) return;
      const sources = [...document.querySelectorAll("#members tbody tr")]
        .filter((tr) => tr.querySelector("input.member").checked)
        .map((tr) => ({ system: tr.dataset.system, sourceId: tr.dataset.sourceId }));
      if (!sources.length) return status("Choose the members to split off.", true);
      await act("POST", path + "/split", { sources, reason: why }, g.version, async (res) => {
        status("Split: " + sources.length + " member" + (sources.length === 1 ? "" : "s") + " left into " + ((res.splitGoldenIds || [])[0] || "a new golden record") + ".");
        await reload();
      });
    };

    const history = el("ol", { class: "timeline", id: "history" });
    show(el("section", {},
      el("h2", {}, "Golden record " + g.goldenId),
      el("p", {}, "version " + g.version + " · " + g.status + " · updated " + g.updatedAt +
        (typeof g.quality === "number" ? " · quality " + Math.round(g.quality * 100) + " %" : "")),
      el("div", { class: "row" }, el("label", { for: "reason" }, "Reason for a change"), reason),
      el("h2", {}, "Attributes"),
      el("table", { id: "attributes" },
        el("thead", {}, el("tr", {}, ["Attribute", "Value", "System", "Source id", "Rule", "Pin", "Pin a value"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, attrRows)),
      el("h2", {}, "Members"),
      el("table", { id: "members" },
        el("thead", {}, el("tr", {}, ["Split off", "System", "Source id", "Why it is a member", ""].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, memberRows)),
      el("button", { type: "button", id: "split", onclick: split }, "Split the chosen members off"),
      el("h2", {}, "History"),
      history));

    const h = await api("GET", path + "/history?limit=20");
    if (h.status !== 200) return status(problem(h), true);
    history.replaceChildren(...(h.body.items || []).map((v) => el("li", { dataset: { version: v.version } },
      "v" + v.version + " · " + v.cause + " · " + v.at + (v.actor ? " · " + v.actor : "") + (v.reason ? " · " + v.reason : "") + " ",
      v.version === g.version ? el("span", { class: "muted" }, "(current)") :
        el("button", { type: "button", class: "rollback", onclick: async () => {
          const why = reasonOf(reason);
          if (!why) return;
          await act("POST", path + "/rollback", { version: v.version, reason: why }, g.version, async () => {
            status("Rolled back to v" + v.version + " (as a new version).");
            await reload();
          });
        } }, "Roll back to v" + v.version))));
  }

  // ---- wiring ----

  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    $("who").textContent = token ? "token set (kept in this page only)" : "no token: local scopes";
  });
  $("show-queue").addEventListener("click", showQueue);
  $("open-golden").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("golden-id").value.trim();
    if (id) showGolden(id);
  });
  $("open-source").addEventListener("submit", async (e) => {
    e.preventDefault();
    const system = $("source-system").value.trim();
    const id = $("source-id").value.trim();
    if (!system || !id) return status("Give the system and the source id.", true);
    const r = await api("GET", "/v1/xref/" + seg(entity()) + "/" + seg(system) + "/" + seg(id));
    if (r.status !== 200) return status(problem(r), true);
    await showGolden(r.body.goldenId);
  });
  showQueue();
})();
