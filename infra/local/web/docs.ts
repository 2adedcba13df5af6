import type { JsonSchema, OpenApiDocument, OpenApiOperation, OpenApiParameter } from '../../../shared/http/openapi';
import { API_ERRORS } from '../../../shared/http/openapi';

/**
 * The readable API docs page (GET /docs): plain HTML rendered on the server from the same
 * OpenAPI document served at /openapi.json. No script and no CDN, so it works offline and
 * loads at once.
 */

const METHODS = ['get', 'post', 'put', 'delete'] as const;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

/** The few markdown habits of the descriptions: `code` spans and blank-line paragraphs. */
function prose(text: string): string {
  return text
    .split(/\n{2,}/)
    .map(
      (paragraph) =>
        `<p>${escapeHtml(paragraph)
          .replace(/`([^`]+)`/g, '<code>$1</code>')
          .replace(/\n/g, '<br>')}</p>`,
    )
    .join('');
}

function inlineCode(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}

function describeResponse(operation: OpenApiOperation, status: string): string {
  const response = operation.responses[status];
  return response && 'description' in response && typeof response.description === 'string' ? response.description : '';
}

/** The full JSON Schema, folded away under the one-line description. */
function schemaDetails(summary: string, schema: JsonSchema | undefined): string {
  if (schema === undefined) return '';
  return `<details><summary>${summary}</summary><pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre></details>`;
}

function responseSchema(operation: OpenApiOperation, status: string): JsonSchema | undefined {
  const response = operation.responses[status];
  return response && 'content' in response ? response.content?.['application/json'].schema : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One line saying what a JSON schema accepts: "integer, 1-99", "string, date", "one of USD, EUR". */
function describeSchema(schema: JsonSchema): string {
  const parts: string[] = [];
  if (Array.isArray(schema.anyOf)) {
    return schema.anyOf
      .filter(isRecord)
      .map((option) => describeSchema(option))
      .join(' or ');
  }
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.map((value) => JSON.stringify(value)).join(', ')}`;
  if (schema.const !== undefined) return `exactly ${JSON.stringify(schema.const)}`;
  if (typeof schema.type === 'string')
    parts.push(
      schema.type === 'array' && isRecord(schema.items) ? `array of ${describeSchema(schema.items)}` : schema.type,
    );
  if (typeof schema.format === 'string') parts.push(schema.format);
  const minimum =
    typeof schema.minimum === 'number' && Math.abs(schema.minimum) < Number.MAX_SAFE_INTEGER
      ? schema.minimum
      : undefined;
  const maximum =
    typeof schema.maximum === 'number' && Math.abs(schema.maximum) < Number.MAX_SAFE_INTEGER
      ? schema.maximum
      : undefined;
  if (minimum !== undefined && maximum !== undefined) parts.push(`${minimum} to ${maximum}`);
  else if (minimum !== undefined) parts.push(`at least ${minimum}`);
  else if (maximum !== undefined) parts.push(`at most ${maximum}`);
  if (typeof schema.minLength === 'number' || typeof schema.maxLength === 'number') {
    parts.push(
      `length ${typeof schema.minLength === 'number' ? schema.minLength : 0}-${typeof schema.maxLength === 'number' ? schema.maxLength : '…'}`,
    );
  }
  // Long generated patterns (ISO dates) say less than their format does.
  if (typeof schema.pattern === 'string' && schema.format === undefined && schema.pattern.length <= 40)
    parts.push(`matching ${schema.pattern}`);
  if (schema.default !== undefined) parts.push(`default ${JSON.stringify(schema.default)}`);
  if (schema.type === 'object' && isRecord(schema.properties))
    parts.push(`{ ${Object.keys(schema.properties).join(', ')} }`);
  return parts.length > 0 ? parts.join(', ') : 'any JSON value';
}

function parameterRows(parameters: OpenApiOperation['parameters'], document: OpenApiDocument): string {
  const resolved: OpenApiParameter[] = parameters.flatMap((parameter) => {
    if (!('$ref' in parameter)) return [parameter];
    const name = parameter.$ref.split('/').pop() ?? '';
    const component = document.components.parameters[name];
    return component ? [component] : [];
  });
  if (resolved.length === 0) return '';
  const rows = resolved
    .map(
      (parameter) =>
        `<tr><td><code>${escapeHtml(parameter.name)}</code></td><td>${parameter.in}</td><td>${parameter.required ? 'required' : 'optional'}</td><td>${escapeHtml(describeSchema(parameter.schema))}${parameter.description ? `<br><small>${escapeHtml(parameter.description)}</small>` : ''}</td></tr>`,
    )
    .join('');
  return `<h4>Parameters</h4><table><thead><tr><th>name</th><th>in</th><th></th><th>accepts</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function bodyFields(schema: JsonSchema): string {
  if (!isRecord(schema.properties)) return `<p>${escapeHtml(describeSchema(schema))}</p>`;
  const required = new Set(
    Array.isArray(schema.required) ? schema.required.filter((name): name is string => typeof name === 'string') : [],
  );
  const rows = Object.entries(schema.properties)
    .map(
      ([name, field]) =>
        `<tr><td><code>${escapeHtml(name)}</code></td><td>${required.has(name) ? 'required' : 'optional'}</td><td>${escapeHtml(isRecord(field) ? describeSchema(field) : 'any')}</td></tr>`,
    )
    .join('');
  return `<table><thead><tr><th>field</th><th></th><th>accepts</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function operationSection(
  method: string,
  path: string,
  operation: OpenApiOperation,
  document: OpenApiDocument,
): string {
  const badges = [
    operation.security.length > 0
      ? '<span class="badge auth">Bearer token</span>'
      : '<span class="badge public">public</span>',
    operation['x-idempotent'] ? '<span class="badge idem">Idempotency-Key</span>' : '',
    operation['x-local-only'] ? '<span class="badge local">local stack only</span>' : '',
  ].join(' ');
  const success = Object.keys(operation.responses).filter((status) => /^\d+$/.test(status));
  const body = operation.requestBody
    ? `<h4>Request body (JSON${operation.requestBody.required ? '' : ', may be empty'})</h4>${operation.requestBody.description ? `<p>${inlineCode(operation.requestBody.description)}</p>` : ''}${bodyFields(operation.requestBody.content['application/json'].schema)}${schemaDetails('JSON Schema', operation.requestBody.content['application/json'].schema)}`
    : '';
  return `<section class="op" id="op-${escapeHtml(operation.operationId)}">
<h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>
<p class="summary">${escapeHtml(operation.summary)} ${badges}</p>
${parameterRows(operation.parameters, document)}${body}
${success.map((status) => `<p class="responses">Answers <strong>${status}</strong>: ${inlineCode(describeResponse(operation, status))}</p>${schemaDetails('JSON Schema of the answer', responseSchema(operation, status))}`).join('')}
<p class="fine">Any refusal is the <a href="#errors">error shape</a>.</p>
</section>`;
}

export function renderDocsPage(document: OpenApiDocument): string {
  const byTag = new Map<string, string[]>();
  const contents = new Map<string, string[]>();
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const tag = operation.tags[0] ?? 'other';
      (byTag.get(tag) ?? byTag.set(tag, []).get(tag))?.push(operationSection(method, path, operation, document));
      (contents.get(tag) ?? contents.set(tag, []).get(tag))?.push(
        `<li><a href="#op-${escapeHtml(operation.operationId)}"><span class="method ${method}">${method.toUpperCase()}</span> ${escapeHtml(path)}</a></li>`,
      );
    }
  }
  const tags = [...byTag.keys()].sort();
  const toc = tags.map((tag) => `<li>${escapeHtml(tag)}<ul>${(contents.get(tag) ?? []).join('')}</ul></li>`).join('');
  const sections = tags
    .map(
      (tag) =>
        `<h2 id="tag-${escapeHtml(tag.replace(/\s+/g, '-'))}">${escapeHtml(tag)}</h2>${(byTag.get(tag) ?? []).join('')}`,
    )
    .join('');
  const errors = API_ERRORS.map(
    (error) => `<tr><td><code>${error.code}</code></td><td>${error.status}</td><td>${escapeHtml(error.when)}</td></tr>`,
  ).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(document.info.title)}: reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d1d28;background:#fafafc}
header,main{max-width:960px;margin:0 auto;padding:0 16px}
header{padding-top:16px}
h1{margin:.4em 0}
h2{border-bottom:2px solid #e4e4ee;padding-bottom:4px;margin-top:2em;text-transform:capitalize}
.op{background:#fff;border:1px solid #e4e4ee;border-radius:8px;padding:4px 16px 8px;margin:12px 0}
.op h3{font-size:1.05em;word-break:break-all}
.method{display:inline-block;min-width:3.6em;text-align:center;border-radius:4px;color:#fff;font:600 12px/1.8 ui-monospace,monospace;padding:0 4px}
.get{background:#2b7a3d}.post{background:#1f5fbf}.put{background:#a25a00}.delete{background:#b3261e}
.badge{font-size:12px;border-radius:10px;padding:1px 8px;margin-left:4px;background:#eee}
.auth{background:#e8f0fe}.idem{background:#fff3d6}.local{background:#fde7e9}.public{background:#e6f4ea}
table{border-collapse:collapse;width:100%;font-size:14px}
td,th{border-bottom:1px solid #eee;text-align:left;padding:4px 6px;vertical-align:top}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f3f3f7;padding:8px;overflow:auto;border-radius:6px}
nav ul{padding-left:18px}nav li{margin:2px 0}
a{color:#1f5fbf}
.fine{font-size:13px;color:#666}
</style></head>
<body>
<header>
<h1>${escapeHtml(document.info.title)} <small>v${escapeHtml(document.info.version)}</small></h1>
${prose(document.info.description)}
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${escapeHtml(document.openapi)}). The live demo page: <a href="/">/</a>.</p>
</header>
<main>
<nav aria-label="Operations"><h2>Contents</h2><ul>${toc}<li><a href="#errors">Errors</a></li></ul></nav>
${sections}
<h2 id="errors">Errors</h2>
<p>Every non-2xx answer is <code>{ "error": { "code", "message", "details"? } }</code>; <code>details</code> lists validation problems, one per field with its path. A 5xx never carries internal detail, only a correlation id.</p>
<table><thead><tr><th>code</th><th>status</th><th>when</th></tr></thead><tbody>${errors}</tbody></table>
</main>
</body></html>`;
}
