// lensfind inspection pages: filters, keyboard grading, on-demand occlusion maps.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("config").textContent);
  const status = document.getElementById("status");
  const say = (text, bad) => { status.textContent = text; status.className = bad ? "bad" : ""; };
  const typing = (e) => ["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName);

  function saveGrade(id, grade) {
    if (!cfg.live) {
      say("static gallery: grading needs engine inspect", true);
      return Promise.resolve(false);
    }
    return fetch((cfg.object_id === undefined ? "" : "../") + "api/grade", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({object_id: id, grade: grade}),
    }).then((r) => r.json().then((body) => {
      if (!r.ok) throw new Error(body.error || r.statusText);
      say(id + ": " + grade + " (" + cfg.meaning[grade] + ") saved");
      return true;
    })).catch((err) => { say(id + ": grade not saved: " + err.message, true); return false; });
  }

  function showGrade(el, grade) {
    el.textContent = grade;
    el.className = "grade g" + grade;
  }

  // ---- the gallery
  if (cfg.object_id === undefined) {
    const cards = Array.from(document.querySelectorAll(".card"));
    let current = null;
    const visible = () => cards.filter((c) => !c.hidden);
    function select(card) {
      if (current) current.classList.remove("current");
      current = card || null;
      if (current) {
        current.classList.add("current");
        current.scrollIntoView({block: "nearest"});
      }
    }
    function step(delta) {
      const shown = visible();
      const i = shown.indexOf(current);
      select(shown[Math.min(Math.max(i + delta, 0), shown.length - 1)]);
    }
    function applyFilters() {
      const lo = parseFloat(document.getElementById("smin").value);
      const hi = parseFloat(document.getElementById("smax").value);
      const known = document.getElementById("known").value;
      const grade = document.getElementById("grade").value;
      for (const c of cards) {
        const s = parseFloat(c.dataset.score);
        const g = c.dataset.grade;
        c.hidden = !((isNaN(lo) || s >= lo) && (isNaN(hi) || s <= hi)
          && (known === "" || c.dataset.known === known)
          && (grade === "" || (grade === "-" ? g === "" : g === grade)));
      }
      const shown = visible();
      document.getElementById("shown").textContent = shown.length + " of " + cards.length + " shown";
      if (!current || current.hidden) select(shown[0]);
    }
    document.getElementById("filters").addEventListener("input", applyFilters);
    cards.forEach((c) => c.addEventListener("click", (e) => {
      if (!e.target.closest("a")) select(c);
    }));
    document.addEventListener("keydown", (e) => {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      const key = e.key.toLowerCase();
      if (cfg.grades.includes(key.toUpperCase()) && current) {
        const card = current, grade = key.toUpperCase();
        saveGrade(Number(card.dataset.id), grade).then((ok) => {
          if (ok) { card.dataset.grade = grade; showGrade(card.querySelector(".grade"), grade); }
        });
        step(1);
      } else if (key === "arrowright" || key === "j") step(1);
      else if (key === "arrowleft" || key === "k") step(-1);
      else if (key === "enter" && current) window.location = current.querySelector("a").href;
      else return;
      e.preventDefault();
    });
    const start = cards.find((c) => "#" + c.id === window.location.hash);
    applyFilters();
    if (start) select(start);
    return;
  }

  // ---- one candidate's page
  const page = (id) => id + ".html";
  document.addEventListener("keydown", (e) => {
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key.toLowerCase();
    if (cfg.grades.includes(key.toUpperCase())) {
      const grade = key.toUpperCase();
      saveGrade(cfg.object_id, grade).then((ok) => {
        if (!ok) return;
        showGrade(document.getElementById("grade"), grade);
        if (cfg.next !== null) window.location = page(cfg.next);
      });
    } else if ((key === "arrowright" || key === "j") && cfg.next !== null) {
      window.location = page(cfg.next);
    } else if ((key === "arrowleft" || key === "k") && cfg.previous !== null) {
      window.location = page(cfg.previous);
    } else if (key === "escape") window.location = "../index.html#c" + cfg.object_id;
    else return;
    e.preventDefault();
  });
  const sal = document.getElementById("saliency");
  if (sal) {
    fetch(sal.dataset.src).then((r) => r.json().then((body) => {
      if (!r.ok) throw new Error(body.error || r.statusText);
      sal.querySelector("img").src = body.png;
      sal.querySelector("figcaption").innerHTML = "occlusion map (4 px patches): <span class='pos'>"
        + "blue</span> hiding it lowers the lens log-odds, <span class='neg'>red</span> raises "
        + "it; strongest change " + body.max_abs_drop_logodds.toPrecision(2) + " in ln(p/(1-p))";
    })).catch((err) => {
      sal.querySelector("figcaption").textContent = "occlusion map unavailable: " + err.message;
    });
  }
})();
