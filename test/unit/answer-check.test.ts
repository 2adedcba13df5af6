import { HTTP_ROUTES, type HttpRoute } from '../../infra/routes';
import { answerMismatch } from '../../infra/local/gateway/answer-check';

function route(name: string): HttpRoute {
  const found = HTTP_ROUTES.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no route ${name}`);
  return found;
}

const wallet = {
  userId: 'u1',
  coins: 120,
  owedCoins: 0,
  diamonds: 0,
  pendingDiamonds: 0,
  locked: false,
  budget: { monthlyLimit: null, spentThisMonth: { amount: 0, currency: 'USD' } },
};

const answer = (statusCode: number, body: unknown) => ({ statusCode, body: JSON.stringify(body) });

describe("the gateway's test-time check of success answers", () => {
  it('passes an answer that is exactly what the route publishes', () => {
    expect(answerMismatch(route('WalletGet'), answer(200, wallet))).toBeUndefined();
  });

  it('names a missing or mistyped field', () => {
    const { coins: _coins, ...withoutCoins } = wallet;
    expect(answerMismatch(route('WalletGet'), answer(200, withoutCoins))).toMatch(/WalletGet: .*coins/s);
    expect(answerMismatch(route('WalletGet'), answer(200, { ...wallet, coins: '120' }))).toMatch(/coins/);
  });

  it('refuses a field the document does not publish', () => {
    expect(answerMismatch(route('WalletGet'), answer(200, { ...wallet, lockReason: 'owner' }))).toMatch(
      /does not publish/,
    );
  });

  it('refuses a success status other than the published one', () => {
    expect(answerMismatch(route('GiftsSend'), answer(200, {}))).toMatch(/answered 200, but publishes 201/);
  });

  it('leaves refusals to the error checks', () => {
    expect(answerMismatch(route('WalletGet'), answer(404, { error: { code: 'NOT_FOUND' } }))).toBeUndefined();
  });
});
