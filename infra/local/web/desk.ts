/**
 * The support desk's operator view on the demo page, at `/#desk`: sign in as an
 * operator (a /dev/tokens token in the `operators` group, kept apart from the page's own
 * session), list open cases oldest first, open one (wallet, reported entry, ledger around it,
 * refundable recharges) and resolve it with a refund selection, a lock decision and a note.
 * Self-contained: app.ts only calls mountDesk(). Every answer is parsed; text is set with
 * textContent only, never as HTML, since cases carry what users typed.
 */
import * as z from 'zod/mini';
import { NetworkUnreachable, sendJson } from './kit';

const DESK_HASH = '#desk';
/** sessionStorage: the operator's token, apart from the viewer/creator session of the page. */
const DESK_TOKEN_KEY = 'live-gifting.desk-token';
const CASES_PAGE_SIZE = 50;
const MAX_NOTE_LENGTH = 2000;
const MAX_REASON_LENGTH = 500;

const entrySchema = z.object({
  id: z.string(),
  type: z.string(),
  coins: z.number(),
  owedCoins: z.number(),
  createdAt: z.string(),
});
type Entry = z.infer<typeof entrySchema>;
const caseSchema = z.object({
  caseId: z.string(),
  kind: z.string(),
  userId: z.string(),
  status: z.string(),
  createdAt: z.string(),
  reportReason: z.optional(z.string()),
  rechargeId: z.optional(z.string()),
});
type DeskCase = z.infer<typeof caseSchema>;
const casesSchema = z.object({ items: z.array(caseSchema), nextCursor: z.nullable(z.string()) });
const rechargeSchema = z.object({
  rechargeId: z.string(),
  packageId: z.string(),
  coins: z.number(),
  price: z.object({ amount: z.number(), currency: z.string() }),
  status: z.string(),
  createdAt: z.string(),
  refundable: z.boolean(),
});
const detailSchema = z.object({
  case: caseSchema,
  wallet: z.object({
    coins: z.number(),
    owedCoins: z.number(),
    locked: z.boolean(),
    lockReason: z.nullable(z.string()),
  }),
  transaction: z.nullable(entrySchema),
  ledger: z.object({ before: z.array(entrySchema), after: z.array(entrySchema) }),
  recharges: z.array(rechargeSchema),
});
type CaseDetail = z.infer<typeof detailSchema>;
const resolvedSchema = z.object({ caseId: z.string(), status: z.string() });
const tokenSchema = z.object({ token: z.string() });
const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

class DeskError extends Error {}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function deskCall<S extends z.ZodMiniType>(
  method: string,
  path: string,
  schema: S,
  options: { body?: unknown; idempotencyKey?: string; token?: string | null } = {},
): Promise<z.infer<S>> {
  const token = options.token === undefined ? sessionStorage.getItem(DESK_TOKEN_KEY) : options.token;
  let answer: Awaited<ReturnType<typeof sendJson>>;
  try {
    answer = await sendJson(method, path, { ...options, token });
  } catch (error) {
    if (error instanceof NetworkUnreachable) throw new DeskError('The network is not reachable. Try again.');
    throw error;
  }
  const { response, json } = answer;
  if (!response.ok) {
    const failure = errorSchema.safeParse(json);
    if (response.status === 403) throw new DeskError('This needs an operator: sign in to the desk as one.');
    throw new DeskError(failure.success ? failure.data.error.message : `The desk answered HTTP ${response.status}.`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new DeskError(`Unexpected answer from ${method} ${path}.`);
  return parsed.data;
}

/** The desk's panel and its state: one case open at a time, with the key its resolution will use. */
class DeskPanel {
  readonly root = element('section', {
    id: 'desk',
    class: 'card',
    'aria-labelledby': 'desk-title',
    'data-testid': 'desk',
  });
  private readonly alert = element('p', { class: 'warning', role: 'alert', 'data-testid': 'desk-alert', hidden: '' });
  private readonly status = element('p', { class: 'fine', role: 'status', 'data-testid': 'desk-status' });
  private readonly signin = element('form', { class: 'row', 'data-testid': 'desk-signin' });
  private readonly list = element('ul', { class: 'history', 'data-testid': 'desk-cases' });
  private readonly detail = element('div', { 'data-testid': 'desk-case', hidden: '' });
  /** One key per opened case: a resolve sent again after a lost answer is the same resolution. */
  private resolveKey = '';

  constructor() {
    this.root.append(element('h2', { id: 'desk-title' }, 'Support desk'), this.alert, this.status);
    const name = element('input', {
      name: 'operator',
      value: 'ops',
      maxlength: '40',
      'aria-label': 'Operator name',
      'data-testid': 'desk-operator',
    });
    this.signin.append(
      name,
      element(
        'button',
        { type: 'submit', class: 'primary', 'data-testid': 'desk-signin-submit' },
        'Sign in as operator',
      ),
    );
    this.signin.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.run(() => this.signIn(name.value.trim() || 'ops'));
    });
    const refresh = element(
      'button',
      { type: 'button', class: 'link', 'data-testid': 'desk-refresh' },
      'Refresh open cases',
    );
    refresh.addEventListener('click', () => void this.run(() => this.loadCases()));
    this.root.append(this.signin, refresh, this.list, this.detail);
  }

  async run(work: () => Promise<void>): Promise<void> {
    this.alert.hidden = true;
    try {
      await work();
    } catch (error) {
      this.alert.textContent = error instanceof DeskError ? error.message : 'Something went wrong.';
      this.alert.hidden = false;
    }
  }

  private async signIn(operatorName: string): Promise<void> {
    const { token } = await deskCall('POST', '/dev/tokens', tokenSchema, {
      token: null,
      body: { sub: operatorName, birthdate: '1990-01-01', country: 'US', groups: ['operators'] },
    });
    sessionStorage.setItem(DESK_TOKEN_KEY, token);
    this.status.textContent = `Signed in to the desk as ${operatorName}.`;
    await this.loadCases();
  }

  async loadCases(): Promise<void> {
    if (!sessionStorage.getItem(DESK_TOKEN_KEY)) return;
    const page = await deskCall('GET', `/v1/operator/cases?limit=${CASES_PAGE_SIZE}`, casesSchema);
    this.list.replaceChildren(
      ...page.items.map((deskCase) => this.caseRow(deskCase)),
      ...(page.items.length === 0 ? [element('li', { 'data-testid': 'desk-empty' }, 'No open cases.')] : []),
    );
  }

  private caseRow(deskCase: DeskCase): HTMLLIElement {
    const row = element('li', { 'data-testid': 'desk-case-row', 'data-case-id': deskCase.caseId });
    const what =
      deskCase.kind === 'report' ? `Report: “${deskCase.reportReason ?? ''}”` : 'Wallet locked by a dispute or refund';
    row.append(element('span', {}, `${new Date(deskCase.createdAt).toLocaleString()} · ${deskCase.userId} · ${what}`));
    const open = element('button', { type: 'button', class: 'link', 'data-testid': 'desk-open' }, 'Open');
    open.addEventListener('click', () => void this.run(() => this.openCase(deskCase.caseId)));
    row.append(open);
    return row;
  }

  private async openCase(caseId: string): Promise<void> {
    const detail = await deskCall('GET', `/v1/operator/cases/${encodeURIComponent(caseId)}`, detailSchema);
    this.resolveKey = `desk-${caseId}-${crypto.randomUUID()}`;
    this.renderCase(detail);
  }

  private renderCase(detail: CaseDetail): void {
    const { wallet } = detail;
    const lockText = wallet.locked ? `locked (${wallet.lockReason ?? 'unknown'})` : 'unlocked';
    const entries = [
      ...detail.ledger.before,
      ...(detail.transaction ? [detail.transaction] : []),
      ...detail.ledger.after,
    ];
    const ledger = element('ul', { class: 'history', 'data-testid': 'desk-ledger' });
    ledger.append(...entries.map((entry) => this.entryRow(entry, entry.id === detail.transaction?.id)));
    this.detail.replaceChildren(
      element('h3', {}, `Case ${detail.case.caseId}`),
      element(
        'p',
        { 'data-testid': 'desk-wallet' },
        `${detail.case.userId}: ${wallet.coins} coins, ${wallet.owedCoins} owed, ${lockText}`,
      ),
      ledger,
      this.resolveForm(detail),
    );
    this.detail.hidden = false;
  }

  private entryRow(entry: Entry, reported: boolean): HTMLLIElement {
    const text = `${new Date(entry.createdAt).toLocaleString()} · ${entry.type} · ${entry.coins} coins${entry.owedCoins ? `, ${entry.owedCoins} owed` : ''}${reported ? ' · reported' : ''}`;
    return element('li', { 'data-testid': reported ? 'desk-reported-entry' : 'desk-entry' }, text);
  }

  private resolveForm(detail: CaseDetail): HTMLFormElement {
    const form = element('form', { 'data-testid': 'desk-resolve' });
    const refunds = element('fieldset');
    refunds.append(element('legend', {}, 'Refund through Stripe'));
    for (const recharge of detail.recharges) {
      const label = element('label', { class: 'check' });
      const box = element('input', {
        type: 'checkbox',
        name: 'refund',
        value: recharge.rechargeId,
        'data-testid': 'desk-refund',
      });
      box.disabled = !recharge.refundable;
      const price = `${(recharge.price.amount / 100).toFixed(2)} ${recharge.price.currency}`;
      label.append(
        box,
        ` ${recharge.coins} coins for ${price} (${recharge.status}${recharge.refundable ? '' : ', not refundable'})`,
      );
      refunds.append(label);
    }
    if (detail.recharges.length === 0) refunds.append(element('p', { class: 'fine' }, 'No recharges to refund.'));
    const lock = element('fieldset');
    lock.append(element('legend', {}, 'The wallet’s lock'));
    for (const [value, text] of [
      ['keep', 'Keep it'],
      ['lift', 'Lift it'],
    ] as const) {
      const label = element('label', { class: 'check' });
      const radio = element('input', { type: 'radio', name: 'lock', value, 'data-testid': `desk-lock-${value}` });
      radio.checked = value === 'keep';
      label.append(radio, ` ${text}`);
      lock.append(label);
    }
    const note = element('textarea', {
      name: 'note',
      maxlength: String(MAX_NOTE_LENGTH),
      'aria-label': 'Note',
      placeholder: 'Note for the case',
      'data-testid': 'desk-note',
    });
    const reason = element('input', {
      name: 'reason',
      required: '',
      maxlength: String(MAX_REASON_LENGTH),
      'aria-label': 'Reason',
      placeholder: 'Reason (required)',
      'data-testid': 'desk-reason',
    });
    const submit = element(
      'button',
      { type: 'submit', class: 'primary', 'data-testid': 'desk-resolve-submit' },
      'Resolve case',
    );
    form.append(refunds, lock, note, reason, submit);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      submit.disabled = true;
      void this.run(() => this.resolve(detail.case.caseId, form)).finally(() => {
        submit.disabled = false;
      });
    });
    return form;
  }

  private async resolve(caseId: string, form: HTMLFormElement): Promise<void> {
    const data = new FormData(form);
    const body = {
      refunds: data.getAll('refund').map((rechargeId) => ({ rechargeId: String(rechargeId) })),
      lock: data.get('lock') === 'lift' ? 'lift' : 'keep',
      note: String(data.get('note') ?? ''),
      reason: String(data.get('reason') ?? ''),
    };
    await deskCall('POST', `/v1/operator/cases/${encodeURIComponent(caseId)}/resolve`, resolvedSchema, {
      body,
      idempotencyKey: this.resolveKey,
    });
    this.status.textContent = `Case ${caseId} resolved.`;
    this.detail.hidden = true;
    await this.loadCases();
  }
}

/** Shows the desk while the address ends in #desk; the rest of the page is left as it is. */
export function mountDesk(): void {
  let panel: DeskPanel | undefined;
  const sync = () => {
    if (location.hash !== DESK_HASH) {
      if (panel) panel.root.hidden = true;
      return;
    }
    panel ??= new DeskPanel();
    if (!panel.root.isConnected) document.querySelector('main')?.prepend(panel.root);
    panel.root.hidden = false;
    const current = panel;
    void current.run(() => current.loadCases());
  };
  window.addEventListener('hashchange', sync);
  sync();
}
