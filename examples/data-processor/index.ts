// Data processing service: reads {data, operation} from $IGNITE_INPUT, prints one JSON line.

interface Input {
  data: number[];
  operation: "sum" | "average" | "max" | "min";
}

interface Output {
  result: number;
  operation: string;
  count: number;
  timestamp: string;
}

const input: Input = JSON.parse(process.env.IGNITE_INPUT || '{"data": [], "operation": "sum"}');

function processData(data: number[], operation: string): number {
  if (data.length === 0) return 0;
  switch (operation) {
    case "sum":
      return data.reduce((a, b) => a + b, 0);
    case "average":
      return data.reduce((a, b) => a + b, 0) / data.length;
    case "max":
      return Math.max(...data);
    case "min":
      return Math.min(...data);
    default:
      throw new Error(`Unknown operation: ${operation}`);
  }
}

const output: Output = {
  result: processData(input.data, input.operation),
  operation: input.operation,
  count: input.data.length,
  timestamp: new Date().toISOString(),
};

console.log(JSON.stringify(output));
