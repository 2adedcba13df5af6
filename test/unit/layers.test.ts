import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/**
 * The use cases and the domain speak through ports (`shared/ports/`): they never import the AWS
 * SDK, and never the DynamoDB adapter's stores. From the adapter they may import only the item
 * modules, which lay out keys, conditions and items as plain data, and which must stay SDK-free.
 */
const ROOT = resolve(__dirname, '../..');
const SDK = /^@(aws-sdk|smithy)\//;
const DYNAMO_ADAPTER = 'shared/adapters/dynamo/';
/** The adapter's plain-data modules a use case may build its ops with: keys, conditions, items, and one `<aggregate>-items` per aggregate. */
const ITEM_MODULES = new Set(
  readdirSync(join(ROOT, DYNAMO_ADAPTER))
    .map((name) => name.replace(/\.ts$/, ''))
    .filter((name) => ['keys', 'conditions', 'items'].includes(name) || name.endsWith('-items'))
    .map((name) => `${DYNAMO_ADAPTER}${name}`),
);

/** The clock and the id source: injected into use cases (deps.now, deps.newId), never imported by them. */
const CLOCK_AND_IDS = new Set(['shared/adapters/clock', 'shared/adapters/ids']);
/**
 * What a DynamoDB expression looks like in a string literal: update clauses, condition functions,
 * `#name` comparisons, key conditions and `:value` placeholders. The use cases hold none.
 */
const EXPRESSION =
  /(SET |ADD |REMOVE |attribute_(not_)?exists|attribute_type|begins_with|if_not_exists|#[a-zA-Z]+ ?(=|<|>)|pk = |':[a-zA-Z]+')/;

/** The lines of a file that hold an expression string, as `path:line: text`. */
function expressionLines(path: string, source: string): string[] {
  return source.split('\n').flatMap((text, index) => {
    const trimmed = text.trim();
    if (trimmed.startsWith('*') || trimmed.startsWith('//') || !EXPRESSION.test(text)) return [];
    return [`${path}:${index + 1}: ${trimmed}`];
  });
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module a file imports (static, type-only, re-export or dynamic), relative ones as repo paths without `.ts`. */
function importsOf(path: string, source: string): string[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map(({ fileName }) =>
      fileName.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(path), fileName)).replace(/\.ts$/, '') : fileName,
    );
}

/** What is wrong with one import of a use-case or domain file, or undefined when it is fine. */
function layerViolation(path: string, imported: string): string | undefined {
  if (SDK.test(imported)) return `${path} imports ${imported}: use cases and the domain speak through shared/ports`;
  if (path.startsWith('shared/domain/') && imported.startsWith('shared/adapters/'))
    return `${path} imports the adapter ${imported}: the domain imports no adapter`;
  if (path.startsWith('shared/usecases/') && CLOCK_AND_IDS.has(imported))
    return `${path} imports ${imported}: take now and newId through the use case's deps`;
  if (imported.startsWith(DYNAMO_ADAPTER) && !ITEM_MODULES.has(imported))
    return `${path} imports the DynamoDB adapter's ${imported}: take its port (shared/ports) instead`;
  return undefined;
}

const violationsIn = (path: string) =>
  importsOf(path, readFileSync(join(ROOT, path), 'utf8')).flatMap((imported) => layerViolation(path, imported) ?? []);

describe('layers: the use cases and the domain import no SDK and no DynamoDB store', () => {
  const files = [...sourceFiles('shared/usecases'), ...sourceFiles('shared/domain')];

  it('finds the files it checks', () => {
    expect(files.length).toBeGreaterThan(20);
    expect(files).toContain('shared/usecases/streams.ts');
    expect(ITEM_MODULES).toContain(`${DYNAMO_ADAPTER}wallet-items`);
    expect(ITEM_MODULES).not.toContain(`${DYNAMO_ADAPTER}ledger-store`);
  });

  it('no use-case or domain file imports @aws-sdk, @smithy or a DynamoDB store', () => {
    expect(files.flatMap(violationsIn)).toEqual([]);
  });

  it("no use case holds a DynamoDB expression: keys, conditions and updates are the item modules' named ops", () => {
    const useCases = files.filter((path) => path.startsWith('shared/usecases/'));
    expect(useCases.length).toBeGreaterThan(15);
    expect(useCases.flatMap((path) => expressionLines(path, readFileSync(join(ROOT, path), 'utf8')))).toEqual([]);
    // The check sees an expression where there is one.
    const moduleSource = readFileSync(join(ROOT, `${DYNAMO_ADAPTER}wallet-items.ts`), 'utf8');
    expect(expressionLines('wallet-items', moduleSource).length).toBeGreaterThan(5);
    expect(expressionLines('example', "const update = { expression: 'SET coins = :coins' };")).toHaveLength(1);
  });

  it('the item modules the use cases may import are SDK-free themselves', () => {
    for (const module of ITEM_MODULES) {
      const imports = importsOf(module, readFileSync(join(ROOT, `${module}.ts`), 'utf8'));
      const outside = imports.filter(
        (imported) => SDK.test(imported) || (imported.startsWith('shared/adapters/') && !ITEM_MODULES.has(imported)),
      );
      expect({ module, outside }).toEqual({ module, outside: [] });
    }
  });

  it('the check catches what it forbids', () => {
    const source = [
      "import { marshall } from '@aws-sdk/util-dynamodb';",
      "import type { DynamoLedgerStore } from '../adapters/dynamo/ledger-store';",
      "import { keys } from '../adapters/dynamo/keys';",
      "export { unmarshall } from '@aws-sdk/util-dynamodb';",
      "const lazy = () => import('../adapters/dynamo/connections-store');",
    ].join('\n');
    const path = 'shared/usecases/example.ts';
    expect(importsOf(path, source).map((imported) => layerViolation(path, imported) !== undefined)).toEqual([
      true,
      true,
      false,
      true,
      true,
    ]);
    expect(layerViolation('shared/domain/example.ts', 'shared/adapters/clock')).toBeDefined();
    expect(layerViolation('shared/usecases/example.ts', 'shared/ports/ledger-store')).toBeUndefined();
    expect(layerViolation('shared/usecases/example.ts', 'shared/adapters/ids')).toMatch(/newId/);
    expect(layerViolation('shared/usecases/example.ts', 'shared/adapters/clock')).toMatch(/deps/);
  });
});
