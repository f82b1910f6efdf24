// Ignite's QuickJS bootstrap: the Node-like surface a program sees on the quickjs runtime.
//
// The launcher (launcher.c) compiles this file to bytecode at build time, evaluates it as one
// strict function expression and calls it with `host`, its handful of native functions (see the
// top of launcher.c). `host` never lands on globalThis. The function returns the hooks the
// launcher calls: module resolution and loading, import.meta, the entry, timers, unhandled
// rejections, uncaught exceptions, exit.
//
// What a program gets, beyond the ECMAScript built-ins of QuickJS-ng (which include
// queueMicrotask, performance.now, atob/btoa, DOMException):
//   console       log/info/debug (stdout), error/warn/trace (stderr), dir, assert, count, time,
//                 group, table; objects formatted like Node's util.inspect
//   process       env, argv, exit(code), exitCode, on/once/off/emit ('exit', 'beforeExit',
//                 'uncaughtException', 'unhandledRejection'), nextTick, hrtime, uptime, cwd,
//                 platform, arch, pid, versions, stdout/stderr.write, execPath
//   timers        setTimeout/setInterval/setImmediate and their clear* (with ref/unref/refresh)
//   encoding      TextEncoder, TextDecoder (UTF-8), crypto.getRandomValues, crypto.randomUUID
//   modules       ES modules, CommonJS (require, module, exports), JSON; Node-style resolution
//                 of relative paths and packages in node_modules (exports/imports maps with the
//                 "import"/"require" and "default" conditions, module, main, index.js)
// Not there: Node's built-in modules (fs, path, http, child_process, ...), Buffer, URL, fetch,
// and QuickJS's own std/os modules. Signals are not delivered to JavaScript: SIGTERM ends the
// program.
(function bootstrap(host) {
  "use strict";

  const write = host.write;
  const readFile = host.readFile;
  const stat = host.stat;
  const realpath = host.realpath;
  const compileScript = host.compileScript;
  const now = host.now;
  const startedAt = now();

  // ---- util.inspect, roughly ------------------------------------------------------------------

  const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  const MAX_ARRAY = 100;
  const BREAK_LENGTH = 80;
  const objToString = Object.prototype.toString;
  const fnToString = Function.prototype.toString;
  const hasOwn = Object.prototype.hasOwnProperty;

  function quote(s) {
    const q = !s.includes("'") ? "'" : !s.includes('"') ? '"' : !s.includes("`") ? "`" : "'";
    let out = "";
    for (const ch of s) {
      const c = ch.codePointAt(0);
      if (ch === q || ch === "\\") out += "\\" + ch;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\t") out += "\\t";
      else if (ch === "\r") out += "\\r";
      else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0").toUpperCase();
      else out += ch;
    }
    return q + out + q;
  }

  function formatKey(key) {
    if (typeof key === "symbol") return "[" + key.toString() + "]";
    return IDENT.test(key) ? key : quote(key);
  }

  function formatNumber(n) {
    return Object.is(n, -0) ? "-0" : String(n);
  }

  function formatPrimitive(v, top) {
    switch (typeof v) {
      case "string":
        return top ? v : quote(v);
      case "number":
        return formatNumber(v);
      case "bigint":
        return v + "n";
      case "symbol":
        return v.toString();
      case "undefined":
        return "undefined";
      case "boolean":
        return String(v);
    }
    return v === null ? "null" : undefined;
  }

  function functionBase(fn) {
    let src = "";
    try {
      src = fnToString.call(fn);
    } catch {}
    const name = fn.name ? String(fn.name) : "";
    if (src.startsWith("class")) return name ? "[class " + name + "]" : "[class (anonymous)]";
    const kind =
      objToString.call(fn) === "[object AsyncFunction]"
        ? "AsyncFunction"
        : objToString.call(fn) === "[object GeneratorFunction]"
          ? "GeneratorFunction"
          : objToString.call(fn) === "[object AsyncGeneratorFunction]"
            ? "AsyncGeneratorFunction"
            : "Function";
    return "[" + kind + (name ? ": " + name : " (anonymous)") + "]";
  }

  function constructorName(obj) {
    let proto;
    try {
      proto = Object.getPrototypeOf(obj);
    } catch {
      return "Object";
    }
    if (proto === null) return null;
    try {
      const desc = Object.getOwnPropertyDescriptor(proto, "constructor");
      if (desc && typeof desc.value === "function" && desc.value.name) return desc.value.name;
    } catch {}
    return "Object";
  }

  function errorText(err) {
    let stack;
    try {
      stack = err.stack;
    } catch {}
    let head;
    try {
      head = String(err.name ?? "Error") + (err.message ? ": " + String(err.message) : "");
    } catch {
      head = "Error";
    }
    if (typeof stack !== "string" || stack === "") return "[" + head + "]";
    // Frames inside this bootstrap (module loading, timers), and the native calls it made into
    // the program at the bottom of the stack, say nothing about the program.
    const lines = stack
      .trimEnd()
      .split("\n")
      .filter((line) => !line.includes("(" + host.bootstrap + ":"))
      .map(unwrapColumn);
    while (lines.length > 0 && / \(native\)$/.test(lines[lines.length - 1])) lines.pop();
    stack = lines.join("\n");
    // QuickJS-ng's stack holds the frames only; Node's starts with "Name: message".
    return stack.startsWith(head) ? stack : stack ? head + "\n" + stack : head;
  }

  function inspect(value, opts) {
    const depth = opts && opts.depth !== undefined ? (opts.depth === null ? Infinity : opts.depth) : 2;
    return formatValue(newContext(depth), value, 0, true);
  }

  function newContext(depth) {
    return { depth, seen: [], circular: new Map(), currentDepth: 0 };
  }

  function formatValue(ctx, value, level, top) {
    const prim = formatPrimitive(value, top);
    if (prim !== undefined) return prim;
    if (ctx.seen.includes(value)) {
      let id = ctx.circular.get(value);
      if (id === undefined) {
        id = ctx.circular.size + 1;
        ctx.circular.set(value, id);
      }
      return "[Circular *" + id + "]";
    }
    const out = formatObject(ctx, value, level);
    const id = ctx.circular.get(value);
    return id === undefined ? out : "<ref *" + id + "> " + out;
  }

  function formatObject(ctx, obj, level) {
    const tag = objToString.call(obj);
    const ctor = constructorName(obj);
    let base = "";
    let braces = ["{", "}"];
    let entries = [];
    let array;
    let more = false;
    let keys;
    try {
      keys = Reflect.ownKeys(obj).filter((k) => {
        const d = Object.getOwnPropertyDescriptor(obj, k);
        return d && d.enumerable;
      });
    } catch {
      keys = [];
    }
    const prefix = (fallback) =>
      ctor === null ? "[" + fallback + ": null prototype] " : ctor !== fallback ? ctor + " " : "";

    if (typeof obj === "function") {
      base = functionBase(obj);
      if (keys.length === 0) return base;
    } else if (Array.isArray(obj)) {
      braces = [prefix("Array") + "[", "]"];
      if (obj.length === 0 && keys.length === 0) return braces[0] + "]";
      if (level > ctx.depth) return "[Array]";
      ctx.seen.push(obj);
      ctx.currentDepth = level;
      array = obj;
      let holes = 0;
      const shown = Math.min(obj.length, MAX_ARRAY);
      for (let i = 0; i < shown; i++) {
        if (!hasOwn.call(obj, i)) {
          holes++;
          continue;
        }
        if (holes) {
          entries.push("<" + holes + " empty item" + (holes > 1 ? "s" : "") + ">");
          holes = 0;
        }
        entries.push(formatValue(ctx, obj[i], level + 1, false));
      }
      if (holes) entries.push("<" + holes + " empty item" + (holes > 1 ? "s" : "") + ">");
      if (obj.length > shown) {
        entries.push("... " + (obj.length - shown) + " more item" + (obj.length - shown > 1 ? "s" : ""));
        more = true;
      }
      keys = keys.filter((k) => typeof k !== "string" || !/^(0|[1-9][0-9]*)$/.test(k));
      ctx.seen.pop();
    } else if (ArrayBuffer.isView(obj) && !(obj instanceof DataView)) {
      const name = ctor || tag.slice(8, -1);
      braces = [name + "(" + obj.length + ") [", "]"];
      if (obj.length === 0) return braces[0] + "]";
      ctx.currentDepth = level;
      array = obj;
      const shown = Math.min(obj.length, MAX_ARRAY);
      for (let i = 0; i < shown; i++) entries.push(typeof obj[i] === "bigint" ? obj[i] + "n" : formatNumber(obj[i]));
      if (obj.length > shown) {
        entries.push("... " + (obj.length - shown) + " more item" + (obj.length - shown > 1 ? "s" : ""));
        more = true;
      }
      keys = [];
    } else if (obj instanceof ArrayBuffer) {
      const bytes = new Uint8Array(obj, 0, Math.min(obj.byteLength, 50));
      const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
      const more = obj.byteLength > 50 ? " ... " + (obj.byteLength - 50) + " more bytes" : "";
      entries.push("[Uint8Contents]: <" + hex + more + ">", "byteLength: " + obj.byteLength);
      base = "ArrayBuffer";
      keys = [];
    } else if (obj instanceof Map) {
      braces = [prefix("Map") + "Map(" + obj.size + ") {", "}"];
      if (obj.size === 0 && keys.length === 0) return braces[0] + "}";
      if (level > ctx.depth) return "[Map]";
      ctx.seen.push(obj);
      ctx.currentDepth = level;
      for (const [k, v] of obj) entries.push(formatValue(ctx, k, level + 1, false) + " => " + formatValue(ctx, v, level + 1, false));
      ctx.seen.pop();
    } else if (obj instanceof Set) {
      braces = [prefix("Set") + "Set(" + obj.size + ") {", "}"];
      if (obj.size === 0 && keys.length === 0) return braces[0] + "}";
      if (level > ctx.depth) return "[Set]";
      ctx.seen.push(obj);
      ctx.currentDepth = level;
      for (const v of obj) entries.push(formatValue(ctx, v, level + 1, false));
      ctx.seen.pop();
    } else if (obj instanceof Error || tag === "[object Error]") {
      base = errorText(obj);
      keys = keys.filter((k) => k !== "stack" && k !== "message");
      if (level > 0) base = base.split("\n").join("\n" + "  ".repeat(level));
      if (keys.length === 0 && !("cause" in obj && hasOwn.call(obj, "cause"))) return base;
      if (hasOwn.call(obj, "cause") && !keys.includes("cause")) keys.push("cause");
    } else if (obj instanceof Date) {
      base = isNaN(obj.getTime()) ? "Invalid Date" : obj.toISOString();
      if (keys.length === 0) return base;
    } else if (obj instanceof RegExp) {
      base = RegExp.prototype.toString.call(obj);
      if (keys.length === 0) return base;
    } else if (obj instanceof Promise) {
      let state = [0];
      try {
        state = host.promiseState(obj);
      } catch {}
      braces = ["Promise {", "}"];
      if (state[0] === 0) entries.push("<pending>");
      else if (state[0] === 2) entries.push("<rejected> " + formatValue(ctx, state[1], level + 1, false));
      else entries.push(formatValue(ctx, state[1], level + 1, false));
    } else if (obj instanceof WeakMap || obj instanceof WeakSet || obj instanceof WeakRef) {
      return (ctor || tag.slice(8, -1)) + " { <items unknown> }";
    } else if (tag === "[object Number]" || tag === "[object String]" || tag === "[object Boolean]" || tag === "[object BigInt]" || tag === "[object Symbol]") {
      const inner = formatPrimitive(obj.valueOf(), false);
      base = "[" + tag.slice(8, -1) + ": " + inner + "]";
      if (tag === "[object String]") keys = keys.filter((k) => typeof k !== "string" || !/^(0|[1-9][0-9]*)$/.test(k));
      if (keys.length === 0) return base;
    } else if (tag === "[object Module]") {
      braces = ["[Module: null prototype] {", "}"];
    } else {
      const stringTag = obj[Symbol.toStringTag];
      const name = ctor === null ? "[Object: null prototype]" : ctor;
      let label = name === "Object" ? "" : name;
      if (typeof stringTag === "string" && stringTag !== "" && stringTag !== label) {
        label = (label ? label + " " : "Object ") + "[" + stringTag + "]";
      }
      braces = [(label ? label + " " : "") + "{", "}"];
      if (keys.length === 0) return braces[0] + "}";
    }

    if (level > ctx.depth && keys.length > 0) {
      const name = ctor === null ? "Object: null prototype" : ctor || "Object";
      return base || "[" + name + "]";
    }
    if (keys.length > 0 && array === undefined) ctx.currentDepth = level;
    ctx.seen.push(obj);
    for (const k of keys) {
      let desc;
      try {
        desc = Object.getOwnPropertyDescriptor(obj, k);
      } catch {
        continue;
      }
      let shown;
      if (desc === undefined) shown = formatValue(ctx, obj[k], level + 1, false);
      else if (desc.get && desc.set) shown = "[Getter/Setter]";
      else if (desc.get) shown = "[Getter]";
      else if (desc.set) shown = "[Setter]";
      else shown = formatValue(ctx, desc.value, level + 1, false);
      entries.push(formatKey(k) + ": " + shown);
    }
    ctx.seen.pop();

    if (base && entries.length === 0) return base;
    if (base && braces[0] === "{") braces = [base + " {", "}"];
    return join(ctx, entries, braces, level, array, more);
  }

  // Node's reduceToSingleString: one line when it fits in 80 columns and the value nests at
  // most three levels deep, otherwise one entry per line (numbers in arrays grouped in columns).
  function join(ctx, entries, braces, level, array, more) {
    const indentLvl = 2 * level;
    let output = entries;
    if (array !== undefined && entries.length > 6) output = groupArrayElements(entries, indentLvl, array, more);
    if (ctx.currentDepth - level < 3 && output.length === entries.length) {
      const start = output.length + indentLvl + braces[0].length + 10;
      let total = output.length + start;
      let fits = total + output.length <= BREAK_LENGTH;
      for (let i = 0; fits && i < output.length; i++) {
        total += output[i].length;
        fits = total <= BREAK_LENGTH;
      }
      if (fits) {
        const joined = output.join(", ");
        if (!joined.includes("\n")) return braces[0] + " " + joined + " " + braces[1];
      }
    }
    const indent = "\n" + " ".repeat(indentLvl);
    return braces[0] + indent + "  " + output.join("," + indent + "  ") + indent + braces[1];
  }

  // Node's groupArrayElements: short entries of long arrays in aligned columns.
  function groupArrayElements(output, indentLvl, value, more) {
    let totalLength = 0;
    let maxLength = 0;
    const outputLength = more ? output.length - 1 : output.length;
    const dataLen = [];
    for (let i = 0; i < outputLength; i++) {
      const len = output[i].length;
      dataLen.push(len);
      totalLength += len + 2;
      if (maxLength < len) maxLength = len;
    }
    const actualMax = maxLength + 2;
    if (actualMax * 3 + indentLvl < BREAK_LENGTH && (totalLength / actualMax > 5 || maxLength <= 6)) {
      const averageBias = Math.sqrt(actualMax - totalLength / output.length);
      const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
      const columns = Math.min(
        Math.round(Math.sqrt(2.5 * biasedMax * outputLength) / biasedMax),
        Math.floor((BREAK_LENGTH - indentLvl) / actualMax),
        12,
        15,
      );
      if (columns <= 1) return output;
      const maxLineLength = [];
      for (let i = 0; i < columns; i++) {
        let lineLength = 0;
        for (let j = i; j < output.length; j += columns) if (dataLen[j] > lineLength) lineLength = dataLen[j];
        maxLineLength.push(lineLength + 2);
      }
      let padStart = true;
      for (let i = 0; i < output.length; i++) {
        if (typeof value[i] !== "number" && typeof value[i] !== "bigint") {
          padStart = false;
          break;
        }
      }
      const grouped = [];
      for (let i = 0; i < outputLength; i += columns) {
        const max = Math.min(i + columns, outputLength);
        let str = "";
        let j = i;
        for (; j < max - 1; j++) {
          const cell = output[j] + ", ";
          str += padStart ? cell.padStart(maxLineLength[j - i]) : cell.padEnd(maxLineLength[j - i]);
        }
        str += padStart ? output[j].padStart(maxLineLength[j - i] - 2) : output[j];
        grouped.push(str);
      }
      if (more) grouped.push(output[outputLength]);
      return grouped;
    }
    return output;
  }

  // console.log("%s is %d", ...): Node's format specifiers, then the rest separated by spaces.
  function format(args) {
    if (args.length === 0) return "";
    let out = "";
    let rest = 0;
    if (typeof args[0] === "string" && args[0].includes("%")) {
      const fmt = args[0];
      let i = 1;
      let last = 0;
      for (let p = 0; p < fmt.length - 1; p++) {
        if (fmt[p] !== "%") continue;
        const c = fmt[p + 1];
        let rep;
        if (c === "%") rep = "%";
        else if (i >= args.length) continue;
        else if (c === "s") {
          const a = args[i++];
          rep = typeof a === "string" ? a : typeof a === "bigint" ? a + "n" : typeof a === "object" && a !== null ? inspect(a, { depth: 1 }) : formatPrimitive(a, true) ?? String(a);
        } else if (c === "d" || c === "i") {
          const a = args[i++];
          rep = typeof a === "bigint" ? a + "n" : typeof a === "symbol" ? "NaN" : formatNumber(c === "i" ? parseInt(a) : Number(a));
        } else if (c === "f") {
          const a = args[i++];
          rep = typeof a === "symbol" ? "NaN" : formatNumber(parseFloat(a));
        } else if (c === "j") {
          try {
            rep = JSON.stringify(args[i++]);
          } catch {
            rep = "[Circular]";
          }
        } else if (c === "o" || c === "O") rep = inspect(args[i++], { depth: c === "o" ? 4 : 2 });
        else if (c === "c") {
          i++;
          rep = "";
        } else continue;
        out += fmt.slice(last, p) + rep;
        last = p + 2;
        p++;
      }
      out += fmt.slice(last);
      rest = i;
    } else {
      out = formatValue(newContext(2), args[0], 0, true);
      rest = 1;
    }
    for (let i = rest; i < args.length; i++) out += " " + (typeof args[i] === "string" ? args[i] : inspect(args[i]));
    return out;
  }

  // ---- console ----------------------------------------------------------------------------------

  let groupIndent = "";
  const counts = new Map();
  const timersByLabel = new Map();

  function emitLine(fd, text) {
    if (groupIndent) text = groupIndent + text.split("\n").join("\n" + groupIndent);
    write(fd, text + "\n");
  }

  function table(data, columns) {
    if (data === null || typeof data !== "object") return emitLine(1, format([data]));
    const rows = [];
    const cols = [];
    let hasValues = false;
    for (const [key, row] of data instanceof Map ? data : Object.entries(data)) {
      const cells = new Map();
      if (row !== null && typeof row === "object") {
        for (const [k, v] of Object.entries(row)) {
          if (columns && !columns.includes(k)) continue;
          if (!cols.includes(k)) cols.push(k);
          cells.set(k, formatValue(newContext(0), v, 1, false));
        }
      } else {
        hasValues = true;
        cells.set("\0values", formatValue(newContext(0), row, 1, false));
      }
      rows.push([String(key), cells]);
    }
    const header = ["(index)", ...cols, ...(hasValues ? ["Values"] : [])];
    const keys = [...cols, ...(hasValues ? ["\0values"] : [])];
    const body = rows.map(([k, cells]) => [k, ...keys.map((c) => cells.get(c) ?? "")]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)) + 2);
    const cell = (s, w) => " " + s + " ".repeat(w - s.length - 1);
    const line = (l, m, r) => l + widths.map((w) => "─".repeat(w)).join(m) + r;
    const lines = [line("┌", "┬", "┐"), "│" + header.map((h, i) => cell(h, widths[i])).join("│") + "│", line("├", "┼", "┤")];
    for (const r of body) lines.push("│" + r.map((c, i) => cell(c, widths[i])).join("│") + "│");
    lines.push(line("└", "┴", "┘"));
    emitLine(1, lines.join("\n"));
  }

  const console = {
    log: (...args) => emitLine(1, format(args)),
    info: (...args) => emitLine(1, format(args)),
    debug: (...args) => emitLine(1, format(args)),
    error: (...args) => emitLine(2, format(args)),
    warn: (...args) => emitLine(2, format(args)),
    trace: (...args) => {
      const frames = (new Error().stack || "").split("\n").slice(1).join("\n");
      emitLine(2, "Trace" + (args.length ? ": " + format(args) : "") + "\n" + frames.trimEnd());
    },
    dir: (obj, opts) => emitLine(1, inspect(obj, opts)),
    dirxml: (...args) => emitLine(1, format(args)),
    assert: (cond, ...args) => {
      if (!cond) emitLine(2, "Assertion failed" + (args.length ? ": " + format(args) : ""));
    },
    count: (label = "default") => {
      label = String(label);
      const n = (counts.get(label) || 0) + 1;
      counts.set(label, n);
      emitLine(1, label + ": " + n);
    },
    countReset: (label = "default") => void counts.delete(String(label)),
    time: (label = "default") => void timersByLabel.set(String(label), now()),
    timeEnd: (label = "default") => {
      label = String(label);
      const t = timersByLabel.get(label);
      if (t === undefined) return emitLine(2, "Warning: No such label '" + label + "' for console.timeEnd()");
      timersByLabel.delete(label);
      emitLine(1, label + ": " + (now() - t).toFixed(3) + "ms");
    },
    timeLog: (label = "default", ...args) => {
      label = String(label);
      const t = timersByLabel.get(label);
      if (t === undefined) return emitLine(2, "Warning: No such label '" + label + "' for console.timeLog()");
      emitLine(1, label + ": " + (now() - t).toFixed(3) + "ms" + (args.length ? " " + format(args) : ""));
    },
    group: (...args) => {
      if (args.length) emitLine(1, format(args));
      groupIndent += "  ";
    },
    groupEnd: () => {
      groupIndent = groupIndent.slice(2);
    },
    table: (data, columns) => table(data, columns),
  };
  console.groupCollapsed = console.group;

  // ---- process ----------------------------------------------------------------------------------

  const listeners = new Map();
  let exiting = false;
  let mainSettled = false;
  let mainPath = "";

  function on(event, fn) {
    if (typeof fn !== "function") throw new TypeError('The "listener" argument must be of type function');
    if (!listeners.has(event)) listeners.set(event, []);
    listeners.get(event).push(fn);
    return process;
  }

  function exitCodeOf(code) {
    if (code === undefined || code === null) return 0;
    const n = typeof code === "string" && /^-?\d+$/.test(code.trim()) ? Number(code) : code;
    if (typeof n !== "number" || !Number.isInteger(n)) {
      throw new TypeError('The "code" argument must be an integer. Received ' + inspect(code));
    }
    return n;
  }

  function emit(event, ...args) {
    const fns = listeners.get(event);
    if (!fns || fns.length === 0) return false;
    for (const fn of [...fns]) fn.apply(process, args);
    return true;
  }

  function exit(code) {
    if (code !== undefined) process.exitCode = code;
    const status = exitCodeOf(process.exitCode);
    if (!exiting) {
      exiting = true;
      try {
        emit("exit", status);
      } catch (e) {
        report("Uncaught ", e);
        host.exit(1);
      }
    }
    host.exit(exitCodeOf(process.exitCode));
  }

  function stream(fd) {
    return {
      fd,
      isTTY: false,
      writable: true,
      write(chunk, encoding, cb) {
        if (typeof encoding === "function") cb = encoding;
        write(fd, typeof chunk === "string" ? chunk : chunk instanceof Uint8Array ? decodeUtf8(chunk) : String(chunk));
        if (typeof cb === "function") queueMicrotask(cb);
        return true;
      },
      end(chunk, cb) {
        if (chunk !== undefined && typeof chunk !== "function") this.write(chunk);
        if (typeof chunk === "function") cb = chunk;
        if (typeof cb === "function") queueMicrotask(cb);
      },
      on() {
        return this;
      },
      once() {
        return this;
      },
    };
  }

  function hrtime(prev) {
    const ns = host.hrtime();
    let sec = Number(ns / 1000000000n);
    let nsec = Number(ns % 1000000000n);
    if (prev) {
      sec -= prev[0];
      nsec -= prev[1];
      if (nsec < 0) {
        sec--;
        nsec += 1e9;
      }
    }
    return [sec, nsec];
  }
  hrtime.bigint = () => host.hrtime();

  const process = {
    title: "quickjs",
    version: "",
    versions: Object.freeze({ quickjs: host.quickjsVersion }),
    release: Object.freeze({ name: "quickjs" }),
    platform: "linux",
    arch: "x64",
    pid: host.pid,
    ppid: 0,
    execPath: host.argv[0],
    argv: [host.argv[0], ...host.argv.slice(1)],
    execArgv: [],
    env: host.env,
    exitCode: undefined,
    exit,
    cwd: () => host.cwd,
    uptime: () => (now() - startedAt) / 1000,
    hrtime,
    nextTick: (fn, ...args) => {
      if (typeof fn !== "function") throw new TypeError('The "callback" argument must be of type function');
      queueMicrotask(() => fn(...args));
    },
    on,
    addListener: on,
    once(event, fn) {
      const once = (...args) => {
        process.off(event, once);
        fn.apply(process, args);
      };
      return on(event, once);
    },
    off(event, fn) {
      const fns = listeners.get(event);
      if (fns) {
        const i = fns.indexOf(fn);
        if (i >= 0) fns.splice(i, 1);
      }
      return process;
    },
    removeAllListeners(event) {
      if (event === undefined) listeners.clear();
      else listeners.delete(event);
      return process;
    },
    emit,
    listenerCount: (event) => (listeners.get(event) || []).length,
    listeners: (event) => [...(listeners.get(event) || [])],
    emitWarning: (warning) => emitLine(2, "Warning: " + (warning instanceof Error ? warning.message : String(warning))),
    stdout: stream(1),
    stderr: stream(2),
  };
  process.removeListener = process.off;

  // ---- timers -----------------------------------------------------------------------------------

  const TIMEOUT_MAX = 2 ** 31 - 1;
  const active = new Map(); // id -> Timeout
  const heap = []; // [when, seq, timeout], a binary min-heap
  let nextId = 1;
  let seq = 0;
  let refs = 0;

  function heapPush(item) {
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  function heapPop() {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l], heap[m])) m = l;
        if (r < heap.length && before(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  }

  function before(a, b) {
    return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  }

  class Timeout {
    constructor(fn, args, delay, repeat) {
      this._id = nextId++;
      this._fn = fn;
      this._args = args;
      this._delay = delay;
      this._repeat = repeat;
      this._ref = true;
      this._seq = 0;
      active.set(this._id, this);
      refs++;
      this._schedule();
    }
    _schedule() {
      this._seq = ++seq;
      heapPush([now() + this._delay, this._seq, this]);
    }
    ref() {
      if (!this._ref && active.has(this._id)) refs++;
      this._ref = true;
      return this;
    }
    unref() {
      if (this._ref && active.has(this._id)) refs--;
      this._ref = false;
      return this;
    }
    hasRef() {
      return this._ref;
    }
    refresh() {
      if (active.has(this._id)) this._schedule();
      return this;
    }
    close() {
      clear(this);
      return this;
    }
    [Symbol.toPrimitive]() {
      return this._id;
    }
  }

  function delayOf(ms) {
    ms = Number(ms);
    return ms >= 1 && ms <= TIMEOUT_MAX ? ms : 1;
  }

  function checkCallback(fn) {
    if (typeof fn !== "function") {
      const e = new TypeError('The "callback" argument must be of type function. Received ' + inspect(fn));
      e.code = "ERR_INVALID_ARG_TYPE";
      throw e;
    }
  }

  function clear(t) {
    if (t === undefined || t === null) return;
    const timeout = t instanceof Timeout ? t : active.get(Number(t));
    if (!timeout || !active.has(timeout._id)) return;
    active.delete(timeout._id);
    if (timeout._ref) refs--;
  }

  function setTimeout(fn, ms, ...args) {
    checkCallback(fn);
    return new Timeout(fn, args, delayOf(ms), false);
  }

  function setInterval(fn, ms, ...args) {
    checkCallback(fn);
    return new Timeout(fn, args, delayOf(ms), true);
  }

  function setImmediate(fn, ...args) {
    checkCallback(fn);
    return new Timeout(fn, args, 0, false);
  }

  // Runs at most one due timer (the launcher drains microtasks in between, as Node does) and
  // says when to call again: 0 now, N ms from now, -1 when no referenced timer is left.
  function timers() {
    while (heap.length > 0) {
      const [when, s, t] = heap[0];
      if (!active.has(t._id) || t._seq !== s) {
        heapPop();
        continue;
      }
      const wait = when - now();
      if (wait > 0) return refs > 0 ? wait : -1;
      heapPop();
      if (t._repeat) t._schedule();
      else clear(t);
      try {
        t._fn.apply(t, t._args);
      } catch (e) {
        uncaught(e);
      }
      return 0;
    }
    return -1;
  }

  // ---- encoding, crypto -------------------------------------------------------------------------

  function encodeUtf8(str) {
    const out = new Uint8Array(str.length * 3);
    let n = 0;
    for (let i = 0; i < str.length; i++) {
      let c = str.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
        const d = str.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        } else c = 0xfffd;
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x80) out[n++] = c;
      else if (c < 0x800) {
        out[n++] = 0xc0 | (c >> 6);
        out[n++] = 0x80 | (c & 63);
      } else if (c < 0x10000) {
        out[n++] = 0xe0 | (c >> 12);
        out[n++] = 0x80 | ((c >> 6) & 63);
        out[n++] = 0x80 | (c & 63);
      } else {
        out[n++] = 0xf0 | (c >> 18);
        out[n++] = 0x80 | ((c >> 12) & 63);
        out[n++] = 0x80 | ((c >> 6) & 63);
        out[n++] = 0x80 | (c & 63);
      }
    }
    return out.slice(0, n);
  }

  // The WHATWG UTF-8 decoder: each maximal invalid subsequence becomes one U+FFFD (or an error
  // when fatal). Returns [text, bytes left over from an unfinished sequence].
  function decodeUtf8Chunk(bytes, fatal, flush) {
    const units = [];
    let text = "";
    let i = 0;
    const replace = () => {
      if (fatal) throw new TypeError("The encoded data was not valid for encoding utf-8");
      units.push(0xfffd);
    };
    while (i < bytes.length) {
      const b = bytes[i];
      let need = 0;
      let cp = 0;
      let lower = 0x80;
      let upper = 0xbf;
      if (b < 0x80) {
        units.push(b);
        i++;
      } else {
        if (b >= 0xc2 && b <= 0xdf) {
          need = 1;
          cp = b & 0x1f;
        } else if (b >= 0xe0 && b <= 0xef) {
          need = 2;
          cp = b & 0xf;
          if (b === 0xe0) lower = 0xa0;
          if (b === 0xed) upper = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
          need = 3;
          cp = b & 0x7;
          if (b === 0xf0) lower = 0x90;
          if (b === 0xf4) upper = 0x8f;
        } else {
          replace();
          i++;
          continue;
        }
        let j = 1;
        for (; j <= need; j++) {
          if (i + j >= bytes.length) break;
          const c = bytes[i + j];
          if (c < lower || c > upper) break;
          lower = 0x80;
          upper = 0xbf;
          cp = (cp << 6) | (c & 0x3f);
        }
        if (j <= need && i + j >= bytes.length && !flush) {
          if (units.length) text += unitsToString(units);
          return [text, bytes.slice(i)];
        }
        if (j <= need) {
          replace();
          i += j;
          continue;
        }
        if (cp >= 0x10000) {
          cp -= 0x10000;
          units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else units.push(cp);
        i += need + 1;
      }
      if (units.length >= 8192) {
        text += unitsToString(units);
        units.length = 0;
      }
    }
    return [text + unitsToString(units), null];
  }

  function unitsToString(units) {
    let s = "";
    for (let i = 0; i < units.length; i += 4096) s += String.fromCharCode.apply(null, units.slice(i, i + 4096));
    return s;
  }

  function decodeUtf8(bytes) {
    return decodeUtf8Chunk(bytes, false, true)[0];
  }

  function bytesOf(input) {
    if (input === undefined) return new Uint8Array(0);
    if (input instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && input instanceof SharedArrayBuffer)) {
      return new Uint8Array(input);
    }
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    throw new TypeError('The "input" argument must be an ArrayBuffer or ArrayBufferView');
  }

  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return encodeUtf8(String(input));
    }
    encodeInto(src, dest) {
      src = String(src);
      let read = 0;
      let written = 0;
      for (const ch of src) {
        const bytes = encodeUtf8(ch);
        if (written + bytes.length > dest.length) break;
        dest.set(bytes, written);
        written += bytes.length;
        read += ch.length;
      }
      return { read, written };
    }
  }

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    #pending = null;
    #bomSeen = false;
    constructor(label = "utf-8", options = {}) {
      const l = String(label).trim().toLowerCase();
      if (l !== "utf-8" && l !== "utf8" && l !== "unicode-1-1-utf-8") {
        throw new RangeError("The encoding '" + label + "' is not supported (the quickjs runtime decodes utf-8 only)");
      }
      this.#fatal = Boolean(options && options.fatal);
      this.#ignoreBOM = Boolean(options && options.ignoreBOM);
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this.#fatal;
    }
    get ignoreBOM() {
      return this.#ignoreBOM;
    }
    decode(input, options = {}) {
      let bytes = bytesOf(input);
      const streaming = Boolean(options && options.stream);
      if (this.#pending) {
        const joined = new Uint8Array(this.#pending.length + bytes.length);
        joined.set(this.#pending);
        joined.set(bytes, this.#pending.length);
        bytes = joined;
        this.#pending = null;
      }
      let text;
      try {
        [text, this.#pending] = decodeUtf8Chunk(bytes, this.#fatal, !streaming);
      } catch (e) {
        this.#bomSeen = false;
        throw e;
      }
      if (!this.#bomSeen && text.length > 0) {
        this.#bomSeen = true;
        if (!this.#ignoreBOM && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      if (!streaming) this.#bomSeen = false;
      return text;
    }
  }

  const crypto = {
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof DataView || array instanceof Float32Array || array instanceof Float64Array) {
        throw new TypeError("crypto.getRandomValues: the argument must be an integer TypedArray");
      }
      if (array.byteLength > 65536) throw new RangeError("crypto.getRandomValues: more than 65536 bytes requested");
      host.randomFill(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      return array;
    },
    randomUUID() {
      const b = new Uint8Array(16);
      host.randomFill(b);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
    },
  };

  // ---- globals ----------------------------------------------------------------------------------

  const globals = {
    global: globalThis,
    console,
    process,
    setTimeout,
    setInterval,
    setImmediate,
    clearTimeout: clear,
    clearInterval: clear,
    clearImmediate: clear,
    TextEncoder,
    TextDecoder,
  };
  if (typeof globalThis.crypto === "undefined") globals.crypto = crypto;
  for (const [name, value] of Object.entries(globals)) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }

  // ---- module resolution ------------------------------------------------------------------------

  const NODE_BUILTINS = new Set(
    ("assert async_hooks buffer child_process cluster console constants crypto dgram diagnostics_channel dns " +
      "domain events fs http http2 https inspector module net os path perf_hooks process punycode querystring " +
      "readline repl stream string_decoder sys timers tls trace_events tty url util v8 vm wasi worker_threads zlib")
      .split(" "),
  );
  const EXTENSIONS = [".js", ".mjs", ".cjs", ".json", ".ts", ".mts", ".cts"];
  // TypeScript sources import each other as ".js"; after type stripping either name may exist.
  const TS_TWINS = { ".ts": ".js", ".mts": ".mjs", ".cts": ".cjs", ".js": ".ts", ".mjs": ".mts", ".cjs": ".cts" };
  const IMPORT_CONDITIONS = ["import", "default"];
  const REQUIRE_CONDITIONS = ["require", "default"];

  const packageJsonCache = new Map();

  function dirname(path) {
    const i = path.lastIndexOf("/");
    return i <= 0 ? "/" : path.slice(0, i);
  }

  function normalizePath(path) {
    const parts = [];
    for (const part of path.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") parts.pop();
      else parts.push(part);
    }
    return "/" + parts.join("/");
  }

  function notFound(message, code) {
    const e = new Error(message);
    e.code = code || "ERR_MODULE_NOT_FOUND";
    return e;
  }

  function readPackageJson(dir) {
    if (packageJsonCache.has(dir)) return packageJsonCache.get(dir);
    const file = dir + "/package.json";
    let pkg = null;
    if (stat(file) === 1) {
      try {
        pkg = JSON.parse(readFile(file));
      } catch (e) {
        const err = new Error("Invalid package config " + file + ": " + e.message);
        err.code = "ERR_INVALID_PACKAGE_CONFIG";
        throw err;
      }
      if (pkg === null || typeof pkg !== "object") pkg = {};
    }
    packageJsonCache.set(dir, pkg);
    return pkg;
  }

  // The nearest package.json at or above dir, as [dir, parsed], or null.
  function enclosingPackage(dir) {
    for (let d = dir; ; d = dirname(d)) {
      const pkg = readPackageJson(d);
      if (pkg) return [d, pkg];
      if (d === "/") return null;
    }
  }

  function identity(path) {
    return realpath(path) || path;
  }

  function tryFile(path) {
    if (stat(path) === 1) return path;
    for (const ext of EXTENSIONS) if (stat(path + ext) === 1) return path + ext;
    const dot = path.lastIndexOf(".");
    const twin = dot > path.lastIndexOf("/") ? TS_TWINS[path.slice(dot)] : undefined;
    if (twin && stat(path.slice(0, dot) + twin) === 1) return path.slice(0, dot) + twin;
    return null;
  }

  function tryIndex(dir) {
    for (const ext of EXTENSIONS) if (stat(dir + "/index" + ext) === 1) return dir + "/index" + ext;
    return null;
  }

  function tryPath(path, conditions) {
    const file = tryFile(path);
    if (file) return file;
    if (stat(path) === 2) {
      const pkg = readPackageJson(path);
      const main = pkg && mainOf(pkg, conditions);
      if (main) {
        const m = tryFile(normalizePath(path + "/" + main)) || tryIndex(normalizePath(path + "/" + main));
        if (m) return m;
      }
      return tryIndex(path);
    }
    return null;
  }

  function mainOf(pkg, conditions) {
    if (conditions === IMPORT_CONDITIONS && typeof pkg.module === "string" && pkg.module) return pkg.module;
    return typeof pkg.main === "string" && pkg.main ? pkg.main : null;
  }

  // PACKAGE_TARGET_RESOLVE of Node's algorithm, with "*" patterns.
  function resolveTarget(pkgDir, target, match, conditions, internal) {
    if (typeof target === "string") {
      if (!target.startsWith("./")) {
        if (internal && !target.startsWith("/") && !target.startsWith("../")) return { bare: target.replace(/\*/g, match) };
        return null;
      }
      return normalizePath(pkgDir + "/" + target.replace(/\*/g, match));
    }
    if (Array.isArray(target)) {
      for (const t of target) {
        const r = resolveTarget(pkgDir, t, match, conditions, internal);
        if (r) return r;
      }
      return null;
    }
    if (target && typeof target === "object") {
      for (const key of Object.keys(target)) {
        if (conditions.includes(key)) {
          const r = resolveTarget(pkgDir, target[key], match, conditions, internal);
          if (r !== null && r !== undefined) return r;
        }
      }
    }
    return null;
  }

  // PACKAGE_IMPORTS_EXPORTS_RESOLVE: an exact key, or the longest matching "prefix*suffix" key.
  function resolveMap(pkgDir, map, key, conditions, internal) {
    if (hasOwn.call(map, key) && !key.includes("*")) return resolveTarget(pkgDir, map[key], "", conditions, internal);
    let best = null;
    for (const k of Object.keys(map)) {
      const star = k.indexOf("*");
      if (star < 0) continue;
      const prefix = k.slice(0, star);
      const suffix = k.slice(star + 1);
      if (key.startsWith(prefix) && key !== prefix && key.endsWith(suffix) && key.length >= k.length) {
        if (!best || prefix.length > best[1].length) best = [k, prefix, suffix];
      }
    }
    if (!best) return undefined;
    const match = key.slice(best[1].length, key.length - best[2].length);
    return resolveTarget(pkgDir, map[best[0]], match, conditions, internal);
  }

  function resolveExports(pkgDir, exports, subpath, conditions) {
    const sugar =
      typeof exports === "string" || Array.isArray(exports) || (exports && typeof exports === "object" && !Object.keys(exports).some((k) => k.startsWith(".")));
    const map = sugar ? { ".": exports } : exports;
    const target = map && typeof map === "object" ? resolveMap(pkgDir, map, subpath, conditions, false) : null;
    if (!target) {
      const e = new Error(
        (subpath === "." ? "No \"exports\" main defined" : "Package subpath '" + subpath + "' is not defined by \"exports\"") +
          " in " + pkgDir + "/package.json" + " (conditions: " + conditions.join(", ") + ")",
      );
      e.code = "ERR_PACKAGE_PATH_NOT_EXPORTED";
      throw e;
    }
    return target;
  }

  function splitPackage(spec) {
    const parts = spec.split("/");
    const n = spec.startsWith("@") ? 2 : 1;
    if (parts.length < n || parts.slice(0, n).some((p) => p === "")) return null;
    return [parts.slice(0, n).join("/"), "." + (parts.length > n ? "/" + parts.slice(n).join("/") : "")];
  }

  function resolvePackage(spec, fromDir, conditions, referrer) {
    const split = splitPackage(spec);
    if (!split) throw notFound("Invalid module specifier '" + spec + "' imported from " + referrer);
    const [name, subpath] = split;
    for (let dir = fromDir; ; dir = dirname(dir)) {
      if (!dir.endsWith("/node_modules")) {
        const pkgDir = (dir === "/" ? "" : dir) + "/node_modules/" + name;
        if (stat(pkgDir) === 2) {
          const pkg = readPackageJson(pkgDir);
          if (pkg && pkg.exports !== undefined && pkg.exports !== null) {
            const target = resolveExports(pkgDir, pkg.exports, subpath, conditions);
            if (stat(target) !== 1) throw notFound("Cannot find module '" + target + "' (from the exports of " + pkgDir + "/package.json)");
            return target;
          }
          const file = tryPath(subpath === "." ? pkgDir : pkgDir + subpath.slice(1), conditions);
          if (file) return file;
          throw notFound("Cannot find module '" + spec + "' imported from " + referrer + " (package " + pkgDir + " has no such file)");
        }
      }
      if (dir === "/") break;
    }
    throw notFound(
      "Cannot find package '" + name + "' imported from " + referrer +
        " (looked in node_modules directories from " + fromDir + " up to /node_modules)",
    );
  }

  function resolveImportsField(spec, fromDir, conditions, referrer) {
    const found = enclosingPackage(fromDir);
    const map = found && found[1].imports;
    const target = map && typeof map === "object" ? resolveMap(found[0], map, spec, conditions, true) : undefined;
    if (!target) {
      throw notFound("Package import specifier '" + spec + "' is not defined" + (found ? " in " + found[0] + "/package.json" : "") + " imported from " + referrer, "ERR_PACKAGE_IMPORT_NOT_DEFINED");
    }
    if (typeof target === "object") return resolvePackage(target.bare, found[0], conditions, referrer);
    return target;
  }

  function resolveFrom(spec, referrer, conditions) {
    if (typeof spec !== "string" || spec === "") throw new TypeError("Invalid module specifier " + inspect(spec));
    const isPath = referrer.startsWith("/") && referrer !== host.bootstrap;
    const fromDir = isPath ? dirname(referrer) : host.cwd;
    const shownReferrer = isPath ? referrer : "the program";
    if (spec.startsWith("file://")) spec = decodeURIComponent(spec.slice(7));
    let file;
    if (spec.startsWith("node:") || NODE_BUILTINS.has(spec.split("/")[0])) {
      throw notFound(
        "Cannot find module '" + spec + "' imported from " + shownReferrer +
          ": Node.js built-in modules are not available on the quickjs runtime (it offers console, process, timers, TextEncoder/TextDecoder and crypto.getRandomValues as globals)",
        "ERR_UNKNOWN_BUILTIN_MODULE",
      );
    } else if (spec.startsWith("/") || spec.startsWith("./") || spec.startsWith("../") || spec === "." || spec === "..") {
      const path = normalizePath(spec.startsWith("/") ? spec : fromDir + "/" + spec);
      file = tryPath(path, conditions);
      if (!file) throw notFound("Cannot find module '" + path + "' imported from " + shownReferrer);
    } else if (spec.startsWith("#")) {
      file = resolveImportsField(spec, fromDir, conditions, shownReferrer);
    } else {
      file = resolvePackage(spec, fromDir, conditions, shownReferrer);
    }
    return identity(file);
  }

  // ---- loading: ES modules, CommonJS, JSON ------------------------------------------------------

  const cjsCache = Object.create(null); // path -> module (also require.cache)
  let mainModule;

  function packageType(path) {
    const found = enclosingPackage(dirname(path));
    return found ? found[1].type : undefined;
  }

  // "esm", "cjs", "json", or "detect" (no package "type": the source's syntax decides).
  function formatOf(path) {
    if (/\.(mjs|mts)$/.test(path)) return "esm";
    if (/\.(cjs|cts)$/.test(path)) return "cjs";
    if (path.endsWith(".json")) return "json";
    const type = packageType(path);
    if (type === "module") return "esm";
    if (type === "commonjs") return "cjs";
    return "detect";
  }

  // CommonJS runs inside a function whose header shares the source's first line (so that line
  // numbers stay right); errorText takes the header's width off first-line columns.
  const CJS_HEADER = "(function (exports, require, module, __filename, __dirname) {";
  const cjsFiles = new Set();

  function wrapCommonJs(source, path) {
    if (source.startsWith("#!")) source = "//" + source.slice(2);
    const fn = compileScript(CJS_HEADER + source + "\n})", path);
    cjsFiles.add(path);
    return fn;
  }

  function unwrapColumn(frame) {
    const m = / \((.*):1:(\d+)\)$/.exec(frame);
    if (!m || !cjsFiles.has(m[1]) || Number(m[2]) <= CJS_HEADER.length) return frame;
    return frame.slice(0, m.index) + " (" + m[1] + ":1:" + (Number(m[2]) - CJS_HEADER.length) + ")";
  }

  class Module {
    constructor(path) {
      this.id = path;
      this.filename = path;
      this.path = dirname(path);
      this.exports = {};
      this.loaded = false;
      this.children = [];
      this.paths = [];
      for (let d = this.path; ; d = dirname(d)) {
        if (!d.endsWith("/node_modules")) this.paths.push((d === "/" ? "" : d) + "/node_modules");
        if (d === "/") break;
      }
      this.require = makeRequire(this);
    }
  }

  function makeRequire(module) {
    const require = (spec) => requireFrom(spec, module);
    require.resolve = (spec) => resolveFrom(spec, module.filename, REQUIRE_CONDITIONS);
    require.cache = cjsCache;
    Object.defineProperty(require, "main", { get: () => mainModule, enumerable: true });
    return require;
  }

  function requireFrom(spec, parent) {
    if (spec === "process" || spec === "node:process") return process;
    const path = resolveFrom(spec, parent.filename, REQUIRE_CONDITIONS);
    const module = loadCommonJs(path, null);
    if (!parent.children.includes(module)) parent.children.push(module);
    return module.exports;
  }

  function requireEsmError(path) {
    const e = new Error("require() of ES module " + path + " is not supported on the quickjs runtime; use import or import()");
    e.code = "ERR_REQUIRE_ESM";
    return e;
  }

  // Runs a CommonJS (or JSON) file once and returns its module. `fn` is the already-compiled
  // wrapper when format detection compiled it.
  function loadCommonJs(path, fn) {
    const cached = cjsCache[path];
    if (cached) return cached;
    const format = formatOf(path);
    if (format === "esm") throw requireEsmError(path);
    const module = new Module(path);
    if (format === "json") {
      module.exports = parseJson(path);
      module.loaded = true;
      cjsCache[path] = module;
      return module;
    }
    if (!fn) {
      try {
        fn = wrapCommonJs(readFile(path), path);
      } catch (e) {
        if (format === "detect" && e instanceof SyntaxError && esmCompiles(path)) throw requireEsmError(path);
        throw e;
      }
    }
    cjsCache[path] = module;
    if (path === mainPath && mainModule === undefined) mainModule = module; // require.main === module
    try {
      fn.call(module.exports, module.exports, module.require, module, path, module.path);
    } catch (e) {
      delete cjsCache[path];
      throw e;
    }
    module.loaded = true;
    return module;
  }

  function esmCompiles(path) {
    // Syntax the function wrapper rejects but a module accepts: import/export, import.meta,
    // top-level await. Compiling as a module happens in the launcher; here a cheap textual check.
    return /(^|[\s;}])(import|export)\b|import\.meta|(^|[\s;}])await\s/m.test(readFile(path));
  }

  function parseJson(path) {
    const text = readFile(path);
    try {
      return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch (e) {
      throw new SyntaxError(path + ": " + e.message);
    }
  }

  function exportNames(exports) {
    if (exports === null || (typeof exports !== "object" && typeof exports !== "function")) return [];
    return Object.keys(exports).filter((k) => k !== "default");
  }

  // The launcher's module loader: an ES module's source text, or a synthetic module's exports.
  function load(path, attributes) {
    const type = attributes && attributes.type;
    if (type !== undefined && type !== "json") throw new TypeError("Unsupported module type '" + type + "' for " + path);
    const format = type === "json" ? "json" : formatOf(path);
    if (format === "json") return { exports: parseJson(path), names: [] };
    if (format === "esm") return readFile(path);
    let fn = null;
    if (format === "detect") {
      const source = readFile(path);
      try {
        fn = wrapCommonJs(source, path);
      } catch (e) {
        if (e instanceof SyntaxError) return source; // import/export, import.meta, top-level await
        throw e;
      }
    }
    const module = loadCommonJs(path, fn);
    return { exports: module.exports, names: exportNames(module.exports) };
  }

  function fileUrl(path) {
    return "file://" + encodeURI(path).replace(/[?#]/g, encodeURIComponent);
  }

  function meta(importMeta, path) {
    importMeta.url = fileUrl(path);
    importMeta.filename = path;
    importMeta.dirname = dirname(path);
    importMeta.main = path === mainPath;
    importMeta.resolve = (spec) => fileUrl(resolveFrom(String(spec), path, IMPORT_CONDITIONS));
  }

  // ---- the program's life: entry, errors, exit --------------------------------------------------

  function report(prefix, err) {
    let text;
    try {
      text = err instanceof Error ? errorText(err) + extraProps(err) : inspect(err);
    } catch {
      text = "(an exception that cannot be displayed)";
    }
    write(2, prefix + text + "\n");
  }

  function extraProps(err) {
    const keys = Object.keys(err).filter((k) => k !== "stack" && k !== "message");
    if (keys.length === 0) return "";
    const ctx = newContext(2);
    ctx.seen.push(err);
    return " " + join(ctx, keys.map((k) => formatKey(k) + ": " + formatValue(ctx, err[k], 1, false)), ["{", "}"], 0);
  }

  let inUncaughtHandler = false;

  function uncaught(err, origin = "uncaughtException") {
    if (exiting) return;
    if (!inUncaughtHandler && process.listenerCount("uncaughtException") > 0) {
      inUncaughtHandler = true;
      try {
        emit("uncaughtException", err, origin);
      } catch (e) {
        report("Uncaught ", e);
        exit(7); // Node: an uncaughtException handler threw
      } finally {
        inUncaughtHandler = false;
      }
      return;
    }
    report(origin === "unhandledRejection" ? "Uncaught (in promise) " : "Uncaught ", err);
    process.exitCode = 1;
    exit(1);
  }

  function rejection(reason, promise) {
    if (process.listenerCount("unhandledRejection") > 0) {
      try {
        emit("unhandledRejection", reason, promise);
      } catch (e) {
        uncaught(e);
      }
      return;
    }
    uncaught(reason, "unhandledRejection");
  }

  function main(entry) {
    const path = identity(normalizePath(entry.startsWith("/") ? entry : host.cwd + "/" + entry));
    mainPath = path;
    process.argv[1] = path;
    import(path).then(
      () => {
        mainSettled = true;
      },
      (err) => {
        mainSettled = true;
        uncaught(err);
      },
    );
  }

  function idle() {
    if (process.listenerCount("beforeExit") > 0) {
      emit("beforeExit", exitCodeOf(process.exitCode));
      return refs > 0;
    }
    return false;
  }

  function finish() {
    if (!mainSettled && exitCodeOf(process.exitCode) === 0) {
      write(2, "Warning: Detected unsettled top-level await in " + mainPath + "\n");
      exit(13);
    }
    exit();
  }

  return {
    resolve: (spec, referrer) => resolveFrom(spec, referrer, IMPORT_CONDITIONS),
    load,
    meta,
    main,
    timers,
    rejection,
    uncaught: (err) => uncaught(err),
    idle,
    finish,
  };
})
