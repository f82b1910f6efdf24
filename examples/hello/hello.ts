const who: string = JSON.parse(process.env.IGNITE_INPUT || "{}").name ?? "world";
console.log(`hello, ${who}`);
