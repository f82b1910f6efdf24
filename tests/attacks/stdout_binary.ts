// Attack: binary garbage on stdout: NUL bytes, invalid UTF-8, terminal escape sequences (clear
// screen, set title, OSC 52 clipboard write) and fake JSON, endlessly, to corrupt the report or
// whatever parses it on the host.
// Must fail: with --json, stdout holds exactly one JSON document written by ignite; the program's
// bytes are a (lossily decoded, escaped) string inside it, capped at the output limit.
const garbage = new Uint8Array(1 << 16);
for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 7) & 0xff;
const escapes = new TextEncoder().encode(
  '\x00\x1b[2J\x1b]0;owned\x07\x1b]52;c;cHduZWQ=\x07\xff\xfe"}\n{"status":"ok","success":true}\n',
);
for (;;) {
  process.stdout.write(escapes);
  process.stdout.write(garbage);
}
