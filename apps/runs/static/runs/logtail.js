// The attempt log page: windows of lines loaded on demand (#L123 loads the window that
// holds line 123), step sections that open and close together across windows, and the
// live tail polled by byte offset with If-None-Match. All HTML comes from the server
// already escaped (apps/runs/ansi.py); nothing from the log is interpreted here.
(function () {
  "use strict";
  var box = document.getElementById("log");
  if (!box) { return; }
  var WINDOW = 500, BEFORE = 100, PERIOD = 1500;
  var earlier = document.getElementById("log-earlier");
  var later = document.getElementById("log-later");
  var status = document.getElementById("log-live");
  var totalText = document.getElementById("log-total");
  var num = function (name) { return parseInt(box.dataset[name], 10) || 0; };

  function parse(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return Array.prototype.slice.call(t.content.children);
  }
  function summaryOf(sec) { return sec.querySelector(":scope > summary"); }
  function sameSection(a, b) {
    return a && b && a.matches("details.sec") && b.matches("details.sec") && a.dataset.s === b.dataset.s;
  }

  function append(nodes) {
    nodes.forEach(function (n) {
      var tail = box.lastElementChild;
      if (!sameSection(tail, n)) { box.appendChild(n); return; }
      var head = summaryOf(tail), fresh = summaryOf(n);
      head.querySelectorAll(".sec-dur, .sec-state").forEach(function (e) { e.remove(); });
      fresh.querySelectorAll(".sec-dur, .sec-state").forEach(function (e) { head.appendChild(e); });
      if (n.classList.contains("failed")) { tail.classList.add("failed"); }
      Array.prototype.slice.call(n.childNodes).forEach(function (c) { if (c !== fresh) { tail.appendChild(c); } });
    });
  }

  function prepend(nodes) {
    nodes.reverse().forEach(function (n) {
      var top = box.firstElementChild;
      if (!sameSection(top, n)) { box.insertBefore(n, box.firstChild); return; }
      var head = summaryOf(top), fresh = summaryOf(n);
      var after = head.nextSibling;
      Array.prototype.slice.call(n.childNodes).forEach(function (c) { if (c !== fresh) { top.insertBefore(c, after); } });
      if (fresh.querySelector(".line")) { top.replaceChild(fresh, head); }  // the real step head
    });
  }

  function setRange(first, last, total) {
    box.dataset.first = first; box.dataset.last = last;
    if (total !== undefined) { box.dataset.total = total; if (totalText) { totalText.textContent = total; } }
    if (earlier) { earlier.hidden = first <= 1; }
    if (later) { later.hidden = last >= num("total"); }
  }

  function lines(first, last) {
    var url = box.dataset.linesUrl + "?from=" + first + "&to=" + last;
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
  }

  function show(line) {
    var el = document.getElementById("L" + line);
    if (!el) { return false; }
    var sec = el.closest("details");
    if (sec) { sec.open = true; }
    document.querySelectorAll(".line.hl").forEach(function (e) { e.classList.remove("hl"); });
    el.classList.add("hl");
    el.scrollIntoView({ block: "center" });
    return true;
  }

  function goTo(line) {
    if (show(line)) { return; }
    var total = num("total");
    var first = Math.max(1, Math.min(line, total) - BEFORE);
    var last = Math.min(total, first + WINDOW - 1);
    lines(first, last).then(function (data) {
      box.replaceChildren.apply(box, parse(data.html));
      setRange(data.first, data.last, data.total);
      show(line);
    });
  }

  function goToEnd() {
    var total = num("total");
    if (num("last") >= total) { window.scrollTo(0, document.body.scrollHeight); return; }
    lines(Math.max(1, total - WINDOW + 1), total).then(function (data) {
      box.replaceChildren.apply(box, parse(data.html));
      setRange(data.first, data.last, data.total);
      window.scrollTo(0, document.body.scrollHeight);
    });
  }

  function fromHash() {
    var m = /^#L(\d+)$/.exec(window.location.hash);
    if (m) { goTo(parseInt(m[1], 10)); }
  }

  document.addEventListener("click", function (ev) {
    var a = ev.target.closest("a");
    if (!a) { return; }
    if (a.dataset.line === "end") { ev.preventDefault(); goToEnd(); return; }
    if (a.dataset.line) {
      ev.preventDefault();
      var target = "#L" + a.dataset.line;
      if (window.location.hash === target) { fromHash(); } else { window.location.hash = target; }
      return;
    }
    if (earlier && earlier.contains(a)) {
      ev.preventDefault();
      var first = num("first");
      lines(Math.max(1, first - WINDOW), first - 1).then(function (data) {
        var height = document.body.scrollHeight;
        prepend(parse(data.html));
        window.scrollBy(0, document.body.scrollHeight - height);  // keep the reader's place
        setRange(data.first, num("last"), data.total);
      });
    } else if (later && later.contains(a)) {
      ev.preventDefault();
      var last = num("last");
      lines(last + 1, last + WINDOW).then(function (data) {
        append(parse(data.html));
        setRange(num("first"), data.last, data.total);
      });
    }
  });
  window.addEventListener("hashchange", fromHash);

  // A step's sections in several windows open and close together.
  box.addEventListener("toggle", function (ev) {
    var sec = ev.target;
    if (!sec.matches || !sec.matches("details.sec")) { return; }
    box.querySelectorAll('details.sec[data-s="' + sec.dataset.s + '"]').forEach(function (d) {
      if (d.open !== sec.open) { d.open = sec.open; }
    });
  }, true);

  fromHash();

  if (box.dataset.live !== "1") { return; }
  var offset = num("offset"), etag = "", delay = PERIOD;
  var badge = document.getElementById("log-state");

  function atBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  }

  function poll() {
    fetch(box.dataset.tailUrl + "?offset=" + offset, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json", "If-None-Match": etag },
    })
      .then(function (r) {
        if (r.status === 304) { return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        etag = r.headers.get("ETag") || "";
        return r.json();
      })
      .then(function (data) {
        delay = PERIOD;
        if (data) {
          var reachesEnd = num("last") >= num("total");
          if (data.html && reachesEnd) {
            var follow = atBottom();
            append(parse(data.html));
            setRange(num("first"), data.first_line + (data.html.match(/class="line"/g) || []).length - 1, data.total);
            if (follow) { window.scrollTo(0, document.body.scrollHeight); }
          } else {
            setRange(num("first"), num("last"), data.total);
          }
          offset = data.offset;
          if (badge && data.badge) { badge.innerHTML = data.badge; }
          if (data.finished && data.offset >= data.size) {
            if (status) { status.textContent = "Finished: " + data.state + "."; }
            return;
          }
        }
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);
        if (status) { status.textContent = "Live tail interrupted; retrying."; }
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, PERIOD);
})();
