/* uapi/scenario.h: how an EL0 program registers itself as a scenario.
 * The kernel finds the table between __scenarios_start and __scenarios_end
 * (see kernel/linker.ld) and starts a scenario's first task at EL0 in
 * user_entry(main, seed), which calls main(seed) and then exit(). */
#ifndef UAPI_SCENARIO_H
#define UAPI_SCENARIO_H

#define SCENARIO_NAME_MAX 31 /* longest scenario name, in bytes */

#ifndef __ASSEMBLER__
typedef void (*scenario_main_t)(unsigned long seed);

struct user_scenario {
    const char *name;     /* as typed after `run`, [a-z0-9_]+ */
    scenario_main_t main; /* EL0 entry, called with the seed */
};

/* USER_SCENARIO(name) { body } defines and registers one scenario:
 * the body is the scenario's main, with `seed` in scope. */
/* The body first prints the seed proof (u_seed_proof, kernel/user/ulib.c):
 * a value only this seed gives, so a replayed transcript shows. */
#define USER_SCENARIO(nm)                                                   \
    static void nm##_body(unsigned long seed);                             \
    static void nm##_main(unsigned long seed)                              \
    {                                                                      \
        u_seed_proof(seed);                                                \
        nm##_body(seed);                                                   \
    }                                                                      \
    static const struct user_scenario scenario_##nm                        \
        __attribute__((used, section(".user_scenarios"), aligned(8))) =    \
        { #nm, nm##_main };                                                 \
    static void nm##_body(unsigned long seed)
#endif

#endif
