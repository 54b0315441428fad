#!/usr/bin/env node
// Drives cdt-gdb-adapter (the gdb debug adapter used by VS Code extensions) over the Debug
// Adapter Protocol against a gdb remote target, the way an IDE does on "attach", and prints
// one JSON object with every answer and the latency of each request. The caller (pytest)
// judges the answers; this script only fails on protocol errors and timeouts.
//
// usage: node dap_session.js '<json config>'
//   config: { gdb, program, target: "host:port", initCommands: [..], evaluate: [..],
//             repeat: N (times threads/stackTrace are repeated for latency), timeoutMs,
//             scopes: false to skip scopes/variables (gdb's first type lookups are slow),
//             adapterLog: path or null }
'use strict';

const { spawn } = require('child_process');
const path = require('path');

const config = JSON.parse(process.argv[2] || '{}');
const timeoutMs = config.timeoutMs || 120000;
const adapterJs = path.join(__dirname, 'node_modules', 'cdt-gdb-adapter', 'dist',
  'debugTargetAdapter.js');

class DapClient {
  constructor(child) {
    this.child = child;
    this.seq = 1;
    this.pending = new Map();
    this.events = [];
    this.eventWaiters = [];
    this.buffer = Buffer.alloc(0);
    child.stdout.on('data', (chunk) => this.onData(chunk));
  }

  onData(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const headerEnd = this.buffer.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const header = this.buffer.slice(0, headerEnd).toString('ascii');
      const match = /Content-Length: (\d+)/i.exec(header);
      if (!match) throw new Error(`bad DAP header: ${header}`);
      const length = Number(match[1]);
      const bodyStart = headerEnd + 4;
      if (this.buffer.length < bodyStart + length) return;
      const message = JSON.parse(this.buffer.slice(bodyStart, bodyStart + length).toString('utf8'));
      this.buffer = this.buffer.slice(bodyStart + length);
      this.dispatch(message);
    }
  }

  dispatch(message) {
    if (message.type === 'response') {
      const waiter = this.pending.get(message.request_seq);
      if (waiter) {
        this.pending.delete(message.request_seq);
        waiter(message);
      }
    } else if (message.type === 'event') {
      this.events.push(message);
      this.eventWaiters = this.eventWaiters.filter((w) => !w(message));
    }
  }

  // Resolves with {response, ms}; rejects on timeout. A failed request is returned, not thrown,
  // so the caller can report the adapter's message.
  request(command, args) {
    const seq = this.seq++;
    const started = process.hrtime.bigint();
    const body = JSON.stringify({ seq, type: 'request', command, arguments: args });
    this.child.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${command}: no response in ${timeoutMs} ms`)),
        timeoutMs);
      this.pending.set(seq, (response) => {
        clearTimeout(timer);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        resolve({ response, ms });
      });
    });
  }

  // Waits for the first event named `name` whose index in this.events is >= `fromIndex`.
  waitEvent(name, fromIndex, waitMs) {
    const found = this.events.slice(fromIndex).find((e) => e.event === name);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), waitMs);
      this.eventWaiters.push((event) => {
        if (event.event !== name) return false;
        clearTimeout(timer);
        resolve(event);
        return true;
      });
    });
  }
}

function requireSuccess(step, result) {
  if (!result.response.success) {
    throw new Error(`${step} failed: ${result.response.message}`);
  }
  return result.response.body || {};
}

async function run() {
  const child = spawn(process.execPath, [adapterJs], { stdio: ['pipe', 'pipe', 'pipe'] });
  let adapterStderr = '';
  child.stderr.on('data', (d) => { adapterStderr += d.toString(); });
  const dap = new DapClient(child);
  const out = { timings: {}, latency: {} };

  try {
    let r = await dap.request('initialize', {
      clientID: 'vmcore-gdbserver-tests', adapterID: 'cdt-gdb', linesStartAt1: true,
      columnsStartAt1: true, pathFormat: 'path', supportsVariableType: true,
    });
    out.capabilities = requireSuccess('initialize', r);
    out.timings.initialize = r.ms;

    const attachArgs = {
      gdb: config.gdb || 'gdb',
      gdbArguments: config.gdbArguments || [],
      program: config.program,
      target: { type: 'remote', parameters: [config.target] },
      initCommands: config.initCommands || [],
      verbose: Boolean(config.adapterLog),
      logFile: config.adapterLog || undefined,
    };
    r = await dap.request('attach', attachArgs);
    requireSuccess('attach', r);
    out.timings.attach = r.ms;
    await dap.waitEvent('initialized', 0, 5000);
    r = await dap.request('configurationDone', {});
    requireSuccess('configurationDone', r);

    // The adapter resumes the target on configurationDone (-exec-continue), as IDEs do on
    // attach. A dump must answer with an immediate stop; a live target keeps running, and then
    // the session pauses it, like a user pressing "pause".
    const stopped = await dap.waitEvent('stopped', 0, config.continueWaitMs || 5000);
    out.stoppedAfterConfigurationDone = stopped ? stopped.body : null;
    if (!stopped) {
      const eventsBefore = dap.events.length;
      r = await dap.request('pause', { threadId: 1 });
      out.pausedAfterConfigurationDone = r.response.success;
      out.stoppedByPause = (await dap.waitEvent('stopped', eventsBefore, 10000) || {}).body || null;
    }

    const repeat = Math.max(1, config.repeat || 1);
    const threadsMs = [];
    let threads = [];
    for (let i = 0; i < repeat; i++) {
      r = await dap.request('threads', {});
      threads = requireSuccess('threads', r).threads || [];
      threadsMs.push(r.ms);
    }
    out.threads = threads;
    out.latency.threads = threadsMs;

    const stopBody = out.stoppedAfterConfigurationDone || out.stoppedByPause;
    const threadId = (stopBody && stopBody.threadId) || (threads[0] && threads[0].id);
    out.threadId = threadId;
    const stackMs = [];
    let frames = [];
    for (let i = 0; i < repeat; i++) {
      r = await dap.request('stackTrace', { threadId, startFrame: 0, levels: 20 });
      frames = requireSuccess('stackTrace', r).stackFrames || [];
      stackMs.push(r.ms);
    }
    out.stackFrames = frames;
    out.latency.stackTrace = stackMs;

    // Stacks of other threads, as an IDE fetches them when the user clicks on them.
    out.otherStacks = {};
    for (const other of (config.stackThreads || [])) {
      const match = threads.find((t) => t.name && t.name.startsWith(other));
      if (!match) continue;
      r = await dap.request('stackTrace', { threadId: match.id, startFrame: 0, levels: 20 });
      out.otherStacks[other] = { ms: r.ms, success: r.response.success,
        frames: (r.response.body && r.response.body.stackFrames) || [],
        message: r.response.message };
    }

    if (frames.length > 0) {
      const frameId = frames[0].id;
      out.variables = {};
      out.scopes = [];
      if (config.scopes !== false) {
        r = await dap.request('scopes', { frameId });
        out.scopes = requireSuccess('scopes', r).scopes || [];
        out.timings.scopes = r.ms;
      }
      for (const scope of out.scopes) {
        r = await dap.request('variables', { variablesReference: scope.variablesReference });
        out.variables[scope.name] = { success: r.response.success, ms: r.ms,
          message: r.response.message,
          variables: (r.response.body && r.response.body.variables) || [] };
      }
      out.evaluate = {};
      for (const expression of (config.evaluate || [])) {
        r = await dap.request('evaluate', { expression, frameId, context: 'watch' });
        out.evaluate[expression] = { success: r.response.success, ms: r.ms,
          result: r.response.body ? r.response.body.result : null,
          variablesReference: r.response.body ? r.response.body.variablesReference : 0,
          message: r.response.message };
        // Expand structured results one level, as the watch view does.
        const ref = r.response.body ? r.response.body.variablesReference : 0;
        if (ref) {
          const children = await dap.request('variables', { variablesReference: ref });
          out.evaluate[expression].children =
            (children.response.body && children.response.body.variables) || [];
        }
      }
    }

    // "continue" on a dump must come back at once with a new stop; a live target keeps
    // running, in which case we pause it so the session can end cleanly.
    const eventsBefore = dap.events.length;
    r = await dap.request('continue', { threadId });
    out.continue = { success: r.response.success, ms: r.ms, message: r.response.message };
    const stopAfter = await dap.waitEvent('stopped', eventsBefore, config.continueWaitMs || 5000);
    out.continue.stoppedAgain = stopAfter ? stopAfter.body : null;
    if (!stopAfter) {
      r = await dap.request('pause', { threadId });
      out.continue.pausedBySession = r.response.success;
      await dap.waitEvent('stopped', eventsBefore, 5000);
    }

    r = await dap.request('disconnect', { terminateDebuggee: false });
    out.disconnect = { success: r.response.success, ms: r.ms, message: r.response.message };
    out.outputEvents = dap.events.filter((e) => e.event === 'output')
      .map((e) => e.body.output).slice(-40);
  } catch (err) {
    out.error = String(err && err.message ? err.message : err);
    out.outputEvents = dap.events.filter((e) => e.event === 'output')
      .map((e) => e.body.output).slice(-40);
    out.adapterStderr = adapterStderr.slice(-4000);
  } finally {
    child.stdin.end();
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
  process.exitCode = out.error ? 1 : 0;
}

run();
