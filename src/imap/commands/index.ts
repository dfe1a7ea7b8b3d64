import type { AnyCommand } from '../command.js';
import append from './append.js';
import authenticate from './authenticate.js';
import capability from './capability.js';
import check from './check.js';
import close from './close.js';
import examine from './examine.js';
import fetch from './fetch.js';
import list from './list.js';
import login from './login.js';
import logout from './logout.js';
import lsub from './lsub.js';
import namespace from './namespace.js';
import noop from './noop.js';
import select from './select.js';
import starttls from './starttls.js';
import status from './status.js';
import store from './store.js';
import uidFetch from './uid-fetch.js';
import uidStore from './uid-store.js';
import unselect from './unselect.js';

/** Every command the server knows, by upper-case name (`UID FETCH` for UID commands). */
export const COMMANDS: ReadonlyMap<string, AnyCommand> = new Map(
  [
    append,
    authenticate,
    capability,
    check,
    close,
    examine,
    fetch,
    list,
    login,
    logout,
    lsub,
    namespace,
    noop,
    select,
    starttls,
    status,
    store,
    uidFetch,
    uidStore,
    unselect,
  ].map((c) => [c.name, c]),
);
