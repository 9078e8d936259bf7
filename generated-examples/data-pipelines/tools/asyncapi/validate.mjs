// Validates an AsyncAPI document with the official parser and its Avro schema parser. Prints every diagnostic
// as one JSON line; exits 1 when any is an error or a warning (or the document does not parse), else 0.
// Usage: node tools/asyncapi/validate.mjs asyncapi.yaml
import { fromFile, Parser, DiagnosticSeverity } from "@asyncapi/parser";
import { AvroSchemaParser } from "@asyncapi/avro-schema-parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs <asyncapi document>");
  process.exit(2);
}

const parser = new Parser();
parser.registerSchemaParser(AvroSchemaParser());
const { document, diagnostics } = await fromFile(parser, path).parse();

const severities = ["error", "warning", "info", "hint"];
for (const diagnostic of diagnostics) {
  console.log(
    JSON.stringify({
      severity: severities[diagnostic.severity] ?? String(diagnostic.severity),
      code: diagnostic.code,
      message: diagnostic.message,
      path: diagnostic.path.join("."),
    }),
  );
}
const failing = diagnostics.filter(
  (d) => d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning,
);
if (document === undefined || failing.length > 0) {
  console.error(`${path}: ${failing.length} error(s) or warning(s)${document === undefined ? ", not parsed" : ""}`);
  process.exit(1);
}
console.error(`${path}: valid (${document.version()}), ${diagnostics.length} info/hint diagnostic(s)`);
