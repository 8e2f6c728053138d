// memhub UI: keyboard shortcuts and confirmations. No inline script anywhere (strict CSP).
(function () {
  "use strict";
  var pending = null;
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  function workspaceBase() {
    var m = location.pathname.match(/^\/ui\/w\/[^/]+\//);
    return m ? m[0] : null;
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    var base = workspaceBase();
    if (ev.key === "/") {
      var q = document.getElementById("q");
      ev.preventDefault();
      if (q) { q.focus(); q.select(); } else if (base) { location.href = base + "search"; }
      return;
    }
    if (pending === "g" && base) {
      var to = { f: "files/", c: "changes", s: "search", x: "context", o: "ops", t: "sessions", i: "items" }[ev.key];
      pending = null;
      if (to) { ev.preventDefault(); location.href = base + to; }
      return;
    }
    if (ev.key === "g") { pending = "g"; setTimeout(function () { pending = null; }, 1500); return; }
    if (ev.key === "e") {
      var edit = document.getElementById("edit");
      if (edit) { ev.preventDefault(); edit.click(); }
    }
  });
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) ev.preventDefault();
  }, true);
  document.addEventListener("keydown", function (ev) {
    // Ctrl/Cmd+S saves the editor
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "s") {
      var save = document.getElementById("save");
      if (save) { ev.preventDefault(); save.click(); }
    }
  });
})();
