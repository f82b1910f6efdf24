// A starter service for Deno, which runs this TypeScript as it is. Inside the sandbox Deno may
// read /app and its npm packages and the environment, nothing else (no network, writes or
// subprocesses). Input arrives as JSON in $IGNITE_INPUT; print the result on stdout.
//   ignite run __NAME__ --input '{"data":[1,2,3],"operation":"sum"}'

type Operation = "sum" | "average" | "max" | "min";

interface Input {
  data: number[];
  operation: Operation;
}

const input: Input = JSON.parse(Deno.env.get("IGNITE_INPUT") || '{"data":[],"operation":"sum"}');

function apply(data: number[], op: Operation): number {
  if (data.length === 0) return 0;
  switch (op) {
    case "sum":
      return data.reduce((a, b) => a + b, 0);
    case "average":
      return data.reduce((a, b) => a + b, 0) / data.length;
    case "max":
      return Math.max(...data);
    case "min":
      return Math.min(...data);
    default:
      throw new Error(`unknown operation: ${op}`);
  }
}

const data = input.data ?? [];
const operation = input.operation ?? "sum";
console.log(JSON.stringify({ result: apply(data, operation), operation, count: data.length, runtime: `deno ${Deno.version.deno}` }));
