// Fails when a function in the source is longer than MAX_FUNCTION_LINES lines (TigerBeetle's limit:
// a function fits on a screen). Biome has no such rule, so this measures with the TypeScript
// compiler's own parser: every function declaration, method, constructor, accessor, function
// expression and arrow function, from its first line to its last, nested functions included in
// their parent's count, blank and comment-only lines not (ESLint's max-lines-per-function with
// skipBlankLines and skipComments).
//
// Usage: node .ci/function-length.mjs [--all]   (--all lists every function over the limit,
// allowed or not, with its length).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export const MAX_FUNCTION_LINES = 70;

// Non-test source. test/support holds the tests' own machinery, so it is held to the same limit.
const ROOTS = ['infra', 'functions', 'shared', 'test/support'];
const SKIP_DIRS = new Set(['node_modules', 'cdk.out', '.data', 'coverage', 'reports']);

/**
 * Functions allowed over the limit for good, keyed `path:name`, each with why: at most
 * MAX_ALLOWED_FOR_GOOD of them.
 */
const ALLOWED_FOR_GOOD = new Map([]);
const MAX_ALLOWED_FOR_GOOD = 2;

/**
 * TEMPORARY: functions over the limit in code other engineers are changing in this round, so that
 * splitting them here would collide with their branches. Each comes off when its split lands;
 * the check fails on an entry that is no longer over the limit, so the list only shrinks.
 */
const ALLOWED_UNTIL_SPLIT = new Map([
  // The payments stand-in.
  ['infra/local/payments/index.ts:startPaymentsStandIn', 'payments stand-in split'],
  ['infra/local/payments/index.ts:handleStripe', 'payments stand-in split'],
]);

const ALLOWED = new Map([...ALLOWED_FOR_GOOD, ...ALLOWED_UNTIL_SPLIT]);

function* sourceFiles(dir) {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (/\.(ts|mts|cts|mjs|js)$/.test(name) && !/\.(test|d)\.ts$/.test(name)) yield path;
  }
}

/** The name a reader would search for: the declaration's own, or the binding that holds it. */
function functionName(node) {
  if (ts.isConstructorDeclaration(node)) {
    const owner = node.parent && ts.isClassLike(node.parent) && node.parent.name ? node.parent.name.text : 'class';
    return `${owner}.constructor`;
  }
  if (node.name && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name) || ts.isPrivateIdentifier(node.name))) {
    const owner = node.parent && ts.isClassLike(node.parent) && node.parent.name ? `${node.parent.name.text}.` : '';
    return owner + node.name.text;
  }
  const parent = node.parent;
  if (
    parent &&
    (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))
  ) {
    if (ts.isIdentifier(parent.name) || ts.isStringLiteral(parent.name)) return parent.name.text;
  }
  if (parent && ts.isCallExpression(parent)) {
    const callee = parent.expression.getText();
    if (callee.length <= 40) return `${callee}(<callback>)`;
  }
  return '<anonymous>';
}

function measure(path) {
  const text = readFileSync(path, 'utf8');
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  // Blank lines and comment-only lines do not count: the limit must never argue against a comment
  // that says why.
  const codeLines = text.split('\n').map((line) => !/^\s*($|\/\/|\/\*|\*)/.test(line));
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const last = file.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = codeLines.slice(first, last + 1).filter(Boolean).length;
      found.push({ name: functionName(node), line: first + 1, lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

const listAll = process.argv.includes('--all');
const over = [];
for (const root of ROOTS) {
  for (const path of sourceFiles(root)) {
    const rel = relative('.', path).split('\\').join('/');
    for (const fn of measure(path)) {
      if (fn.lines > MAX_FUNCTION_LINES) over.push({ ...fn, key: `${rel}:${fn.name}`, where: `${rel}:${fn.line}` });
    }
  }
}

const failures = over.filter((fn) => !ALLOWED.has(fn.key));
const seen = new Set(over.map((fn) => fn.key));
const stale = [...ALLOWED.keys()].filter((key) => !seen.has(key));
if (listAll) {
  for (const fn of over.sort((a, b) => b.lines - a.lines)) {
    console.log(`${String(fn.lines).padStart(4)}  ${fn.key}  (${fn.where})${ALLOWED.has(fn.key) ? '  allowed' : ''}`);
  }
}
for (const fn of failures) {
  console.error(`${fn.where}: ${fn.name} is ${fn.lines} lines, over the ${MAX_FUNCTION_LINES}-line limit`);
}
// An allow-list entry whose function shrank or moved is removed, so the list only ever shrinks.
for (const key of stale) console.error(`${key}: allowed over the limit but no longer is; remove it from ALLOWED`);
if (ALLOWED_FOR_GOOD.size > MAX_ALLOWED_FOR_GOOD) {
  console.error(
    `At most ${MAX_ALLOWED_FOR_GOOD} functions may stay over the limit for good; ALLOWED_FOR_GOOD has ${ALLOWED_FOR_GOOD.size}`,
  );
}
if (failures.length > 0 || stale.length > 0 || ALLOWED_FOR_GOOD.size > MAX_ALLOWED_FOR_GOOD) {
  console.error(`Split the function along its seams (.ci/function-length.mjs explains the allow-list).`);
  process.exit(1);
}
