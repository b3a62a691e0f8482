/* postfix-compliance: builds each check's detail (message, remediation, rollback, evidence) from the
 * page's data block when its row is shown expanded, and fills a probe's command and output when its
 * <details> is opened.
 * Everything is created with createElement/textContent: whatever a host printed is shown as text,
 * never parsed as HTML. Rows stay small in pytest-html's own data (it rebuilds every row on each
 * expand/collapse); a detail is built only for a row that is expanded. */
(function () {
  'use strict';
  var data = null;
  var LABELS = {pass: 'pass', fail: 'FAIL', error: 'ERROR', waived: 'waived', not_applicable: 'not applicable'};

  function page() {
    if (data === null) {
      var node = document.getElementById('pfc-data');
      try { data = node ? JSON.parse(node.textContent) : {}; } catch (err) { data = {}; }
      data.checks = data.checks || {}; data.rows = data.rows || {}; data.outputs = data.outputs || {};
    }
    return data;
  }

  function own(map, key) {
    return Object.prototype.hasOwnProperty.call(map, key) ? map[key] : null;
  }

  function add(parent, tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    parent.appendChild(node);
    return node;
  }

  function labelled(parent, className, label, text) {
    var block = add(parent, 'div', className);
    add(block, 'b', null, label);
    block.appendChild(document.createTextNode(text));
    return block;
  }

  function buildDetail(slot) {
    if (slot.getAttribute('data-built')) { return; }
    slot.setAttribute('data-built', '1');
    var d = page();
    var row = own(d.rows, slot.getAttribute('data-r'));
    if (!row) { add(slot, 'p', 'pfc-hint', '(no detail for this row in the report; see results.json)'); return; }
    var check = own(d.checks, row.check) || {};
    var bad = row.outcome === 'fail' || row.outcome === 'error' || row.outcome === 'waived';
    if (row.message) { add(slot, 'div', 'pfc-msg o-' + row.outcome, row.message); }
    if (row.waiver) {
      var w = row.waiver;
      var words = (w.justification || '') + (w.owner ? ' (owner ' + w.owner + ')' : '') +
        (w.expires && !w.expired ? ' until ' + w.expires : '') + (w.where ? ' [' + w.where + ']' : '');
      if (w.expired) {
        labelled(slot, 'pfc-waiver expired', 'Waiver expired on ' + w.expires,
          ': it no longer covers this failure. ' + words);
      } else {
        labelled(slot, 'pfc-waiver', 'Waived', ': ' + words);
      }
    }
    (row.notes || []).forEach(function (note) { add(slot, 'div', 'pfc-note', note); });
    if (bad && check.why) { labelled(slot, 'pfc-why', 'Why it matters', ': ' + check.why); }
    var steps = (row.fix || []).map(function (key) { return own(d.steps || {}, key); }).filter(Boolean);
    if (steps.length) {
      // the host's remediation plan: the steps that serve this check (the script and playbook run the same)
      var fix = add(slot, 'div', 'pfc-fix');
      add(fix, 'b', null, 'Fix');
      add(fix, 'span', 'pfc-hint', ' (steps of this host\'s remediation plan; --remediation-script and ' +
        '--remediation-playbook run the whole plan)');
      add(fix, 'pre', 'pfc-remediation', steps.map(function (s) { return [s.head].concat(s.cmds).join('\n'); })
        .join('\n'));
      var back = [];
      steps.forEach(function (s) { (s.rollback || []).forEach(function (r) { if (back.indexOf(r) < 0) { back.push(r); } }); });
      if (back.length) {
        add(fix, 'b', null, 'Rollback');
        add(fix, 'pre', 'pfc-rollback', back.join('\n'));
      }
    }
    if (row.evidence && row.evidence.length) {
      var ev = add(slot, 'div', 'pfc-ev');
      add(ev, 'b', null, 'Evidence');
      add(ev, 'span', 'pfc-hint', ' (open a probe for its command, exit status and output)');
      row.evidence.forEach(function (item) {
        var details = add(ev, 'details');
        details.setAttribute('data-ev', item[0]);
        add(details, 'summary', null, item[1] + ' · ' + item[2]);
      });
    }
    if (bad && check.refs && check.refs.length) { add(slot, 'div', 'pfc-refs', 'References: ' + check.refs.join('; ')); }
  }

  function fillOutput(details) {
    if (details.getAttribute('data-filled')) { return; }
    details.setAttribute('data-filled', '1');
    var ev = own(page().outputs, details.getAttribute('data-ev'));
    var body = add(details, 'div', 'pfc-ev-body');
    if (!ev) { add(body, 'p', 'pfc-hint', '(this output is not in the report; see results.json)'); return; }
    add(body, 'pre', 'pfc-cmd', '$ ' + ev.cmd);
    add(body, 'p', 'pfc-status', (ev.error ? 'no result: ' + ev.error : 'exit status ' + ev.exit) + ' · ' + ev.s + ' s');
    add(body, 'pre', 'pfc-out' + (ev.out ? '' : ' empty'), ev.out || '(no output on stdout)');
    if (ev.err) { add(body, 'pre', 'pfc-err', ev.err); }
  }

  // A large report opens listing the failing checks only: pytest-html reads its filter from the
  // URL (?visible=...) when its own script starts, which is after this one.
  var view = page().view || {};
  if (view.visible && window.history && window.URL) {
    try {
      var url = new URL(window.location.href);
      if (!url.searchParams.has('visible')) {
        url.searchParams.set('visible', view.visible);
        window.history.replaceState(window.history.state, '', url.href);
      }
    } catch (err) { /* a URL the browser will not rewrite: everything is listed */ }
  }

  // pytest-html replaces the whole results table on every render: build the details of the rows
  // it shows expanded (collapsed ones have a hidden extras row), each time.
  function buildExpanded(root) {
    var slots = (root || document).querySelectorAll('.extras-row:not(.hidden) .pfc-d:not([data-built])');
    for (var i = 0; i < slots.length; i++) { buildDetail(slots[i]); }
  }

  new MutationObserver(function (mutations) {
    for (var i = 0; i < mutations.length; i++) {
      var added = mutations[i].addedNodes;
      for (var j = 0; j < added.length; j++) {
        if (added[j].id === 'results-table') { buildExpanded(added[j]); }
      }
    }
  }).observe(document.body, {childList: true});

  // <details> toggle events do not bubble: listen in the capture phase.
  document.addEventListener('toggle', function (event) {
    var target = event.target;
    if (target && target.tagName === 'DETAILS' && target.open && target.hasAttribute('data-ev')) {
      fillOutput(target);
    }
  }, true);

  // The environment table (the run's suite, profile and hosts; Python, plugins...) is the least urgent
  // thing on the page: it starts collapsed, its heading saying what it holds. pytest-html fills it after
  // this script ran (its own comes last): a table left empty loses its heading too.
  var envTable = document.getElementById('environment');
  var envHeader = document.getElementById('environment-header');
  if (envTable && envHeader) {
    envTable.classList.add('hidden');
    envHeader.classList.add('collapsed');
    var heading = envHeader.querySelector('h2');
    if (heading && !heading.querySelector('.pfc-env-hint')) {
      add(heading, 'span', 'pfc-env-hint', ' the suite, profile and hosts of this run; Python, packages, plugins');
    }
    document.addEventListener('DOMContentLoaded', function () {
      if (!envTable.rows.length) { envHeader.hidden = true; envTable.hidden = true; }
    });
  }
  buildExpanded();  // a page whose table is already there (html.page: no pytest-html to render it)
  window.pfcReport = {buildExpanded: buildExpanded, labels: LABELS};
}());
