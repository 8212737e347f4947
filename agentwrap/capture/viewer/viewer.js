// The run viewer's script: search, expand/collapse all, copying, and the raw legs
// built from the data block on demand. Recorded text is only ever set through
// textContent (never innerHTML), so nothing recorded can become markup.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('raw-data').textContent);
  var list = document.getElementById('list');
  var items = Array.prototype.map.call(document.querySelectorAll('details.ex'), function (d) {
    var readable = d.querySelector('.readable');
    var text = (d.querySelector('summary').textContent + '\n' + (readable ? readable.textContent : '')).toLowerCase();
    var msgs = Array.prototype.map.call(d.querySelectorAll('.msg'), function (m) {
      return {el: m, text: m.textContent.toLowerCase()};
    });
    return {el: d, text: text, msgs: msgs};
  });

  // -- raw legs: a body is a tree of references into data.values (capture/raw.py, ValueTable)
  function rebuild(node) {
    if (typeof node === 'number') return data.values[node];
    if (node.a) return node.a.map(rebuild);
    var out = {};
    node.o.forEach(function (pair) {
      Object.defineProperty(out, pair[0], {value: rebuild(pair[1]), enumerable: true, writable: true, configurable: true});
    });
    return out;
  }
  function bodyText(body, pretty) {
    if (body.json !== undefined) return JSON.stringify(rebuild(body.json), null, pretty ? 2 : undefined);
    return rebuild(body.text);
  }
  // A raw leg's body, pretty; a cURL's here-document (its head is in the page: capture/raw.py, curl_head).
  function fill(el) {
    if (el.dataset.filled) return;
    var body = (data.ex[el.dataset.ex] || [])[Number(el.dataset.leg)];
    var pre = el.querySelector('pre.body');
    if (el.classList.contains('curl')) {
      pre.textContent += body ? '\n' + bodyText(body, false) + '\nAGENTWRAP_BODY\n' : '\n';
    } else {
      pre.textContent = body ? bodyText(body, true) : '(no body recorded)';
    }
    el.dataset.filled = '1';
  }
  document.addEventListener('toggle', function (ev) {
    var d = ev.target;
    if (d.open && d.dataset && d.dataset.leg !== undefined) fill(d);
  }, true);

  // -- expand / collapse
  document.getElementById('expand').addEventListener('click', function () {
    items.forEach(function (it) { if (!it.el.hidden) it.el.open = true; });
  });
  document.getElementById('collapse').addEventListener('click', function () {
    document.querySelectorAll('details[open]').forEach(function (d) { d.open = false; });
  });
  function reveal() {
    var target = location.hash && document.getElementById(location.hash.slice(1));
    for (var d = target; d; d = d.parentElement) if (d.tagName === 'DETAILS') d.open = true;
  }
  window.addEventListener('hashchange', reveal);
  reveal();

  // -- copy
  function copied(button, ok) {
    var label = button.textContent;
    button.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(function () { button.textContent = label; }, 1500);
  }
  function fallbackCopy(text) {
    var area = document.createElement('textarea');
    area.value = text;
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }
  list.addEventListener('click', function (ev) {
    var button = ev.target.closest('button.copy');
    if (!button) return;
    var leg = button.closest('details[data-leg]');
    if (leg) fill(leg);
    var text = button.parentElement.querySelector('pre').textContent;
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { copied(button, true); },
        function () { copied(button, fallbackCopy(text)); });
    } else {
      copied(button, fallbackCopy(text));
    }
  });

  // -- search: requests whose readable text holds every word; within them, the messages that hold one
  var q = document.getElementById('q');
  var count = document.getElementById('count');
  var none = document.getElementById('none');
  var wasOpen = null;
  function highlight(words) {
    if (!window.CSS || !CSS.highlights || typeof Highlight === 'undefined') return;
    CSS.highlights.delete('search');
    if (!words.length) return;
    var ranges = [];
    items.forEach(function (it) {
      if (it.el.hidden || ranges.length > 2000) return;
      var walker = document.createTreeWalker(it.el.querySelector('.readable') || it.el, NodeFilter.SHOW_TEXT);
      for (var node = walker.nextNode(); node && ranges.length < 2000; node = walker.nextNode()) {
        var lower = node.data.toLowerCase();
        words.forEach(function (w) {
          for (var at = lower.indexOf(w); at >= 0; at = lower.indexOf(w, at + w.length)) {
            var r = new Range();
            r.setStart(node, at);
            r.setEnd(node, at + w.length);
            ranges.push(r);
          }
        });
      }
    });
    var marks = new Highlight();
    ranges.forEach(function (r) { marks.add(r); });
    CSS.highlights.set('search', marks);
  }
  function search() {
    var words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length && wasOpen === null) wasOpen = items.map(function (it) { return it.el.open; });
    var shown = 0;
    items.forEach(function (it, i) {
      var hit = words.every(function (w) { return it.text.indexOf(w) >= 0; });
      it.el.hidden = !hit;
      it.msgs.forEach(function (m) {
        m.el.classList.toggle('hit', words.some(function (w) { return m.text.indexOf(w) >= 0; }));
      });
      if (hit) shown++;
      if (words.length) it.el.open = hit;
      else if (wasOpen) it.el.open = wasOpen[i];
    });
    if (!words.length) wasOpen = null;
    list.classList.toggle('searching', words.length > 0);
    none.hidden = shown > 0;
    count.textContent = words.length ? shown + ' of ' + items.length + ' requests' : items.length + ' requests';
    highlight(words);
  }
  q.addEventListener('input', search);
  document.addEventListener('keydown', function (ev) {
    if (ev.key === '/' && document.activeElement !== q) { ev.preventDefault(); q.focus(); }
    else if (ev.key === 'Escape' && document.activeElement === q) { q.value = ''; search(); }
  });
})();
