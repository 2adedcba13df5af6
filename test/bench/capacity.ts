import { GetItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { TableDefinition } from '../../shared/adapters/dynamo/schema';

/**
 * Capacity as AWS bills it, computed from what the functions actually send.
 *
 * DynamoDB Local 3.3 does not double transactional ConsumedCapacity (measured on 3.3), so write units
 * are computed here from item sizes by AWS's rule: a write costs 1 unit per KB of item (rounded up),
 * 2 inside a transaction (ConditionCheck included), and every index write costs the same again for
 * the projected item. An item's size is the sum of its attribute names' and values' sizes.
 * The benchmark captures the exact inputs with middleware on the functions' DynamoDB client.
 */

export const WRITE_UNIT_BYTES = 1024;
/** AWS bills a transactional write twice: prepare and commit. */
export const TRANSACTION_FACTOR = 2;
/** Map and list values carry 3 bytes of their own, and each element 1 more. */
const CONTAINER_OVERHEAD_BYTES = 3;
const ELEMENT_OVERHEAD_BYTES = 1;

const utf8 = (text: string): number => Buffer.byteLength(text, 'utf8');

/** AWS: a number is about (significant digits / 2) + 1 bytes. */
function numberSize(text: string): number {
  const digits = text.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

export function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return utf8(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((sum, item) => sum + utf8(item), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, item) => sum + numberSize(item), 0);
  if (value.BS !== undefined) return value.BS.reduce((sum, item) => sum + item.byteLength, 0);
  if (value.L !== undefined)
    return CONTAINER_OVERHEAD_BYTES + value.L.reduce((sum, item) => sum + valueSize(item) + ELEMENT_OVERHEAD_BYTES, 0);
  if (value.M !== undefined) {
    return (
      CONTAINER_OVERHEAD_BYTES +
      Object.entries(value.M).reduce(
        (sum, [name, item]) => sum + utf8(name) + valueSize(item) + ELEMENT_OVERHEAD_BYTES,
        0,
      )
    );
  }
  return 0;
}

export type RawItem = Record<string, AttributeValue>;

export function itemSize(item: RawItem): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + valueSize(value), 0);
}

export const units = (bytes: number): number => Math.max(1, Math.ceil(bytes / WRITE_UNIT_BYTES));

/** One write as sent, before pricing. */
export interface CapturedWrite {
  table: string;
  kind: 'Put' | 'Update' | 'Delete' | 'ConditionCheck';
  transactional: boolean;
  key: RawItem;
  item?: RawItem;
  updateExpression?: string;
  names?: Record<string, string>;
}

/** Units charged to one partition key (`table#pk` or `table/index#pk`). */
export interface PricedWrite {
  units: number;
  byKey: Array<{ partition: string; units: number }>;
  detail: Array<{ what: string; bytes: number; units: number }>;
}

function keyOf(definition: TableDefinition, item: RawItem): RawItem {
  const key: RawItem = {};
  for (const attribute of [definition.partitionKey, definition.sortKey]) {
    const value = attribute && item[attribute.name];
    if (attribute && value) key[attribute.name] = value;
  }
  return key;
}

const scalar = (value: AttributeValue | undefined): string | undefined => value?.S ?? value?.N;

/** Attribute names an update expression touches, and those it removes. */
function touchedNames(write: CapturedWrite): { touched: Set<string>; removed: Set<string> } {
  const expression = write.updateExpression ?? '';
  const resolve = (token: string) => (token.startsWith('#') ? (write.names?.[token] ?? token) : token);
  const touched = new Set<string>();
  const removed = new Set<string>();
  const clauses = expression.split(/\b(SET|REMOVE|ADD|DELETE)\b/);
  for (let index = 1; index < clauses.length; index += 2) {
    const verb = clauses[index];
    const body = clauses[index + 1] ?? '';
    for (const part of body.split(',')) {
      const target = /^\s*([#A-Za-z_][\w#]*)/.exec(part)?.[1];
      if (!target) continue;
      const name = resolve(target);
      touched.add(name);
      if (verb === 'REMOVE') removed.add(name);
    }
  }
  return { touched, removed };
}

export class CapacityModel {
  /** The index key values last seen on an item, for an update that removes them. */
  private readonly knownIndexKeys = new Map<string, Record<string, AttributeValue>>();
  private readonly images = new Map<string, RawItem | undefined>();

  constructor(
    private readonly definitions: Map<string, TableDefinition>,
    private readonly reader: DynamoDBClient,
  ) {}

  private definition(table: string): TableDefinition {
    const found = this.definitions.get(table);
    if (!found) throw new Error(`no table definition for ${table}`);
    return found;
  }

  private static id(table: string, key: RawItem): string {
    return `${table}|${JSON.stringify(
      Object.keys(key)
        .sort()
        .map((name) => [name, key[name]]),
    )}`;
  }

  /** Remembers index keys from puts (call in capture order). */
  observe(write: CapturedWrite): void {
    if (write.kind !== 'Put' || !write.item) return;
    const definition = this.definition(write.table);
    const indexKeys: Record<string, AttributeValue> = {};
    for (const index of definition.globalSecondaryIndexes) {
      const value = write.item[index.partitionKey.name];
      if (value) indexKeys[index.partitionKey.name] = value;
    }
    this.knownIndexKeys.set(CapacityModel.id(write.table, write.key), indexKeys);
  }

  /** The item as stored now (for updates, whose result the request does not carry). */
  private async image(table: string, key: RawItem): Promise<RawItem | undefined> {
    const id = CapacityModel.id(table, key);
    if (this.images.has(id)) return this.images.get(id);
    const read = await this.reader.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }));
    this.images.set(id, read.Item);
    return read.Item;
  }

  /** Forget cached images (between scenarios, so a later read sees later sizes). */
  forgetImages(): void {
    this.images.clear();
  }

  async price(write: CapturedWrite): Promise<PricedWrite> {
    const definition = this.definition(write.table);
    const factor = write.transactional ? TRANSACTION_FACTOR : 1;
    const stored = write.kind === 'Put' ? write.item : await this.image(write.table, write.key);
    const item = stored ?? write.key;
    const bytes = itemSize(item);
    const baseUnits = units(bytes) * factor;
    const pk = scalar(write.key[definition.partitionKey.name]) ?? '?';
    const byKey = [{ partition: `${write.table}#${pk}`, units: baseUnits }];
    const detail = [{ what: `${write.kind} ${pk}`, bytes, units: baseUnits }];
    if (write.kind === 'ConditionCheck') return { units: baseUnits, byKey, detail };

    const { touched, removed } = touchedNames(write);
    const known = this.knownIndexKeys.get(CapacityModel.id(write.table, write.key)) ?? {};
    for (const index of definition.globalSecondaryIndexes) {
      const keyNames = [index.partitionKey.name, ...(index.sortKey ? [index.sortKey.name] : [])];
      const inIndexNow = stored !== undefined && keyNames.every((name) => stored[name] !== undefined);
      let writes = 0;
      if (write.kind === 'Put') writes = inIndexNow ? 1 : 0;
      else if (write.kind === 'Delete') writes = stored && keyNames.every((name) => stored[name] !== undefined) ? 1 : 0;
      else if (keyNames.some((name) => removed.has(name)))
        writes = 1; // leaves the index: one delete
      else if (inIndexNow && keyNames.some((name) => touched.has(name)))
        writes = 2; // key moved: delete + put (a first insert is 1; counted as 2)
      else if (inIndexNow && (index.projection === 'ALL' || [...touched].some((name) => keyNames.includes(name))))
        writes = 1;
      if (writes === 0) continue;
      const projected =
        index.projection === 'ALL'
          ? bytes
          : itemSize({
              ...keyOf(definition, item),
              ...Object.fromEntries(keyNames.flatMap((name) => (item[name] ? [[name, item[name]]] : []))),
            });
      const indexUnits = units(projected) * factor * writes;
      const indexPk =
        scalar(
          stored?.[index.partitionKey.name] ?? write.item?.[index.partitionKey.name] ?? known[index.partitionKey.name],
        ) ?? '?';
      byKey.push({ partition: `${write.table}/${index.indexName}#${indexPk}`, units: indexUnits });
      detail.push({ what: `  index ${index.indexName} ${indexPk} x${writes}`, bytes: projected, units: indexUnits });
    }
    return { units: byKey.reduce((sum, entry) => sum + entry.units, 0), byKey, detail };
  }
}

/** The writes in one DynamoDB request, in the shape the pricing needs. */
export function writesOf(commandName: string, input: any): CapturedWrite[] {
  const writes: CapturedWrite[] = [];
  if (commandName === 'TransactWriteItemsCommand') {
    for (const entry of input.TransactItems ?? []) {
      if (entry.Put)
        writes.push({ table: entry.Put.TableName, kind: 'Put', transactional: true, key: {}, item: entry.Put.Item });
      if (entry.Update)
        writes.push({
          table: entry.Update.TableName,
          kind: 'Update',
          transactional: true,
          key: entry.Update.Key,
          updateExpression: entry.Update.UpdateExpression,
          names: entry.Update.ExpressionAttributeNames,
        });
      if (entry.Delete)
        writes.push({ table: entry.Delete.TableName, kind: 'Delete', transactional: true, key: entry.Delete.Key });
      if (entry.ConditionCheck)
        writes.push({
          table: entry.ConditionCheck.TableName,
          kind: 'ConditionCheck',
          transactional: true,
          key: entry.ConditionCheck.Key,
        });
    }
  } else if (commandName === 'PutItemCommand') {
    writes.push({ table: input.TableName, kind: 'Put', transactional: false, key: {}, item: input.Item });
  } else if (commandName === 'UpdateItemCommand') {
    writes.push({
      table: input.TableName,
      kind: 'Update',
      transactional: false,
      key: input.Key,
      updateExpression: input.UpdateExpression,
      names: input.ExpressionAttributeNames,
    });
  } else if (commandName === 'DeleteItemCommand') {
    writes.push({ table: input.TableName, kind: 'Delete', transactional: false, key: input.Key });
  } else if (commandName === 'BatchWriteItemCommand') {
    for (const [table, requests] of Object.entries<any[]>(input.RequestItems ?? {})) {
      for (const request of requests) {
        if (request.PutRequest)
          writes.push({ table, kind: 'Put', transactional: false, key: {}, item: request.PutRequest.Item });
        if (request.DeleteRequest)
          writes.push({ table, kind: 'Delete', transactional: false, key: request.DeleteRequest.Key });
      }
    }
  }
  return writes;
}

/** Fills a Put's key from its item. */
export function withKeys(writes: CapturedWrite[], definitions: Map<string, TableDefinition>): CapturedWrite[] {
  return writes.map((write) => {
    if (write.kind !== 'Put' || !write.item) return write;
    const definition = definitions.get(write.table);
    return definition ? { ...write, key: keyOf(definition, write.item) } : write;
  });
}
