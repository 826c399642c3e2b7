/*
** hekate: the instruction budget seen from C. The pattern matcher of the string library
** (hekate_strlib.c) and LPeg's matching machine (lpeg/lpvm.c) count their steps and, every
** HEKATE_CHARGE_STEPS steps and when a call ends, charge them to the running sandbox call's
** instruction budget -- the budget the instruction-count hook draws on (sandbox/src/sandbox.rs).
*/

#ifndef hekate_budget_h
#define hekate_budget_h

#include "lua.h"

/* steps between two charges */
#define HEKATE_CHARGE_STEPS	1000

/*
** Charges `steps' to the budget (sandbox/src/strlib.rs, hekate_match_charge). Returns when the
** call may go on; otherwise raises the instruction hook's own error with luaL_error --
** "instruction_limit exceeded", or "aborted by SIGUSR2" -- and the hook, set to fire at the next
** instruction, raises it again, so a pcall around the matching function cannot swallow it.
** Defined in hekate_strlib.c.
*/
void hekate_charge (lua_State *L, int steps);

#endif
