// Attack: flood stderr instead of stdout, in case only stdout is capped.
// Must fail: stderr has its own cap; ignite kills the program at it and reports "output_limit"
// with stderr marked truncated.
const line = "E".repeat(1023) + "\n";
for (;;) process.stderr.write(line);
