import fc from 'fast-check';
import { assertOperator, flattenClaimForLambda, isOperator, parseGroupsClaim } from '../../shared/auth/operators';
import { forgetConfig } from '../../shared/config';
import { ForbiddenError } from '../../shared/domain/errors';
import { callerFromClaims } from '../../shared/http/caller';

/** Issue 13, part 1: who is an operator, from the groups claim in both forms it arrives in. */

afterEach(() => {
  delete process.env.CLAIM_GROUPS;
  delete process.env.OPERATOR_GROUP;
  forgetConfig();
});

test('the groups claim parses as API Gateway hands it ("[a b]") and as the JSON array', () => {
  expect(parseGroupsClaim('[operators support]')).toEqual(['operators', 'support']);
  expect(parseGroupsClaim(['operators', 'support'])).toEqual(['operators', 'support']);
  expect(parseGroupsClaim('[]')).toEqual([]);
  expect(parseGroupsClaim('operators')).toEqual(['operators']);
  // Malformed claims make nobody an operator.
  expect(parseGroupsClaim(42)).toEqual([]);
  expect(parseGroupsClaim({ operators: true })).toEqual([]);
  expect(parseGroupsClaim([1, 'operators'])).toEqual([]);
  expect(parseGroupsClaim(undefined)).toEqual([]);
});

test('flattening an array claim as the authorizer does and parsing it back gives the same groups', () => {
  const groupName = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,20}$/);
  fc.assert(
    fc.property(fc.array(groupName, { maxLength: 10 }), (groups) => {
      expect(parseGroupsClaim(flattenClaimForLambda(groups))).toEqual(groups);
    }),
  );
  expect(flattenClaimForLambda('US')).toBe('US');
  expect(flattenClaimForLambda(true)).toBe(true);
});

test('a caller is an operator only with the operator group in the configured claim', () => {
  const operator = callerFromClaims({ sub: 'op', 'cognito:groups': '[support operators]' });
  const viewer = callerFromClaims({ sub: 'v', 'cognito:groups': '[support]' });
  const noGroups = callerFromClaims({ sub: 'n' });
  // A user-writable claim of another name never counts.
  const impostor = callerFromClaims({ sub: 'i', groups: ['operators'], 'custom:groups': '[operators]' });
  expect(isOperator(operator)).toBe(true);
  expect(isOperator(viewer)).toBe(false);
  expect(isOperator(noGroups)).toBe(false);
  expect(isOperator(impostor)).toBe(false);
  expect(() => assertOperator(viewer)).toThrow(ForbiddenError);
  expect(() => assertOperator(operator)).not.toThrow();
});

test('the claim and the group are configuration', () => {
  process.env.CLAIM_GROUPS = 'roles';
  process.env.OPERATOR_GROUP = 'staff';
  forgetConfig();
  expect(isOperator(callerFromClaims({ sub: 'a', roles: '[staff]' }))).toBe(true);
  expect(isOperator(callerFromClaims({ sub: 'b', 'cognito:groups': '[operators]' }))).toBe(false);
});
