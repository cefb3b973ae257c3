// Live parts of a page (the element #live): poll its data-live-url with If-None-Match.
// A 304 costs the server one small query; a 200 brings the part re-rendered by the
// server, which replaces the old one. Stops when the part says data-final="1" and
// pauses while the tab is hidden. The HTML is the server's own escaped markup.
(function () {
  "use strict";
  var PERIOD = 1500;
  var delay = PERIOD;
  var timer = null;

  function current() { return document.getElementById("live"); }

  function schedule() {
    var el = current();
    if (!el || el.dataset.final === "1") { return; }
    timer = window.setTimeout(poll, delay);
  }

  function keepOpen(old, fresh) {
    // <details> the reader opened stay open (and closed ones closed) across updates.
    old.querySelectorAll("details[id]").forEach(function (d) {
      var twin = fresh.querySelector("details#" + CSS.escape(d.id));
      if (twin) { twin.open = d.open; }
    });
  }

  function poll() {
    timer = null;
    var el = current();
    if (!el) { return; }
    if (document.hidden) { return; }  // resumed by visibilitychange
    var url = el.dataset.liveUrl + (el.dataset.liveSearch ? window.location.search : "");
    fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "If-None-Match": el.dataset.etag || "", Accept: "text/html" },
    })
      .then(function (r) {
        if (r.status === 304) { return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        if (html) {
          var t = document.createElement("template");
          t.innerHTML = html.trim();
          var fresh = t.content.querySelector("#live");
          if (fresh) {
            keepOpen(el, fresh);
            el.replaceWith(fresh);
            document.dispatchEvent(new CustomEvent("deltaci:live-updated"));
          }
        }
        delay = PERIOD;
        schedule();
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);
        schedule();
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer === null) { delay = PERIOD; poll(); }
  });
  schedule();
})();
