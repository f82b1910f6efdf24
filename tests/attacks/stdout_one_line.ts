// Attack: one endless line on stdout, never a newline, to make the host buffer it without bound
// (a line-oriented reader would wait for the end of a line that never comes).
// Must fail: ignite caps each stream (--output-limit); past the cap it keeps exactly that many
// bytes, marks the stream truncated, kills the program and reports "output_limit".
const chunk = "A".repeat(1 << 16);
for (;;) process.stdout.write(chunk);
