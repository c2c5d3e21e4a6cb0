// What types/index.d.ts declares, read with the TypeScript compiler's own parser, so tests can hold
// it against what the code does: test/types.test.js against the modules' exports and constants,
// tests/web/test_npm_package.py against the objects a real handler returns in Chromium.
//   node types/check/members.js PredictResult HandlerStatus …  →  {"PredictResult": ["backend", …], …}

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const DTS = fileURLToPath(new URL('../index.d.ts', import.meta.url));

function parse(file = DTS) {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
}

const nameOf = (member) => (member.name ? member.name.getText() : null);

/** Property names of an interface, class or object type literal (members of every union arm of a type alias). */
export function members(name, source = parse()) {
  for (const node of source.statements) {
    if ((ts.isInterfaceDeclaration(node) || ts.isClassDeclaration(node)) && node.name?.text === name) {
      return node.members.map(nameOf).filter((n) => n && n !== 'constructor');
    }
    if (ts.isTypeAliasDeclaration(node) && node.name.text === name) {
      const arms = ts.isUnionTypeNode(node.type) ? node.type.types : [node.type];
      return [...new Set(arms.flatMap((arm) => (ts.isTypeLiteralNode(arm) ? arm.members.map(nameOf) : [])))];
    }
  }
  throw new Error(`${name} is not declared in ${DTS}`);
}

/** The string literals of a union type alias (`type PrivacyMode = 'auto' | …`). */
export function literals(name, source = parse()) {
  const node = source.statements.find((s) => ts.isTypeAliasDeclaration(s) && s.name.text === name);
  if (!node) throw new Error(`${name} is not declared in ${DTS}`);
  return node.type.types.map((arm) => arm.literal.text);
}

/** The type literal of a `const NAME: Readonly<{…}>` declaration: {member: literal text}. */
export function constType(name, source = parse()) {
  for (const node of source.statements) {
    if (!ts.isVariableStatement(node)) continue;
    for (const decl of node.declarationList.declarations) {
      if (decl.name.getText() !== name) continue;
      const literal = ts.isTypeReferenceNode(decl.type) ? decl.type.typeArguments?.[0] : decl.type;
      if (!literal || !ts.isTypeLiteralNode(literal)) return null;
      return Object.fromEntries(literal.members.map((m) => [nameOf(m), m.type.getText().replace(/^'|'$/g, '')]));
    }
  }
  throw new Error(`const ${name} is not declared in ${DTS}`);
}

/** Names of the values (consts, classes, functions) the declarations export. */
export function exportedValues(source = parse()) {
  const names = [];
  for (const node of source.statements) {
    if (ts.isVariableStatement(node)) names.push(...node.declarationList.declarations.map((d) => d.name.getText()));
    else if ((ts.isClassDeclaration(node) || ts.isFunctionDeclaration(node)) && node.name) names.push(node.name.text);
  }
  return names;
}

/** Static member names of a declared class. */
export function staticMembers(name, source = parse()) {
  const node = source.statements.find((s) => ts.isClassDeclaration(s) && s.name?.text === name);
  return node.members.filter((m) => m.modifiers?.some((k) => k.kind === ts.SyntaxKind.StaticKeyword)).map(nameOf);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const source = parse();
  console.log(JSON.stringify(Object.fromEntries(process.argv.slice(2).map((name) => [name, members(name, source).sort()]))));
}
