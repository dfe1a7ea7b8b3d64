import type { AnyCommand } from '../command.js';
import append from './append.js';
import authenticate from './authenticate.js';
import capability from './capability.js';
import check from './check.js';
import close from './close.js';
import compress from './compress.js';
import copy from './copy.js';
import create from './create.js';
import deleteCommand from './delete.js';
import enable from './enable.js';
import examine from './examine.js';
import expunge from './expunge.js';
import fetch from './fetch.js';
import getquota from './getquota.js';
import getquotaroot from './getquotaroot.js';
import id from './id.js';
import idle from './idle.js';
import list from './list.js';
import login from './login.js';
import logout from './logout.js';
import lsub from './lsub.js';
import move from './move.js';
import namespace from './namespace.js';
import noop from './noop.js';
import rename from './rename.js';
import search from './search.js';
import select from './select.js';
import setquota from './setquota.js';
import sort from './sort.js';
import starttls from './starttls.js';
import status from './status.js';
import store from './store.js';
import subscribe from './subscribe.js';
import thread from './thread.js';
import uidCopy from './uid-copy.js';
import uidExpunge from './uid-expunge.js';
import uidFetch from './uid-fetch.js';
import uidMove from './uid-move.js';
import uidSearch from './uid-search.js';
import uidSort from './uid-sort.js';
import uidStore from './uid-store.js';
import uidThread from './uid-thread.js';
import unauthenticate from './unauthenticate.js';
import unselect from './unselect.js';
import unsubscribe from './unsubscribe.js';

/** Every command the server knows, by upper-case name (`UID FETCH` for UID commands). */
export const COMMANDS: ReadonlyMap<string, AnyCommand> = new Map(
  [
    append,
    authenticate,
    capability,
    check,
    close,
    compress,
    copy,
    create,
    deleteCommand,
    enable,
    examine,
    expunge,
    fetch,
    getquota,
    getquotaroot,
    id,
    idle,
    list,
    login,
    logout,
    lsub,
    move,
    namespace,
    noop,
    rename,
    search,
    select,
    setquota,
    sort,
    starttls,
    status,
    store,
    subscribe,
    thread,
    uidCopy,
    uidExpunge,
    uidFetch,
    uidMove,
    uidSearch,
    uidSort,
    uidStore,
    uidThread,
    unauthenticate,
    unselect,
    unsubscribe,
  ].map((c) => [c.name, c]),
);
