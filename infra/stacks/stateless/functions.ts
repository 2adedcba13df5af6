import type { Access } from '../../routes';
import type { AppFunction } from '../../constructs/app-function';

/** What a function of the stack is built from; the stack names it, binds its access and keeps it for the alarms. */
export interface FunctionSpec {
  handler: string;
  description: string;
  access: Access;
  timeoutSeconds?: number;
  environment?: Record<string, string>;
}

export type AddFunction = (name: string, spec: FunctionSpec) => AppFunction;
