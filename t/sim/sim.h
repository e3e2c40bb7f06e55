/*
 * A deterministic simulation of the election: 2 to 7 nginx instances, each
 * running the shipped lib/kle_elector.c (and the state machine, the lock
 * and its JSON under it) over a simulated transport (sim_http.c), with the
 * module's publication and readers (lib/kle_claim), against a simulated
 * API server, on one simulated clock.  One seed decides every delay, loss,
 * pause, crash, reload and foreign write; invariants are checked after
 * every event.  docs/simulation.md describes what is modelled and why.
 */

#ifndef SIM_H
#define SIM_H

#include <stdint.h>
#include <stdio.h>

#include "kle_claim.h"
#include "kle_election.h"
#include "kle_elector.h"
#include "kle_http.h"

#define SIM_INST_MAX   7
#define SIM_REQ_MAX    96     /* requests in flight, senders gone or not */
#define SIM_HIST       16     /* changes the server keeps for watches */
#define SIM_WQ         24     /* a watch stream's backlog: more ends it */
#define SIM_FOREIGN    32     /* foreign writes remembered by a run */
#define SIM_POOL       3      /* timings a seed's reloads choose from */
#define SIM_ID_MAX     24
#define SIM_SUSP       16     /* suspends an instance's clock remembers */
#define SIM_HEAP_MAX   8192   /* stale events stay until their time */

/* 2026-01-01T00:00:00Z */
#define SIM_WALL0      INT64_C(1767225600000000)

#define SIM_PPM        INT64_C(1000000)

typedef enum {
    SIM_F_DELAY = 0,
    SIM_F_REQ_LOST,
    SIM_F_ANSWER_LOST,
    SIM_F_LATE_APPLY,
    SIM_F_ERROR,
    SIM_F_ERROR_AFTER,
    SIM_F_THROTTLE,
    SIM_F_WATCH_LAG,
    SIM_F_WATCH_DROP,
    SIM_F_WATCH_GONE,
    SIM_F_WATCH_CLOSE,
    SIM_F_PARTITION,
    SIM_F_PAUSE_ELECTOR,
    SIM_F_PAUSE_INSTANCE,
    SIM_F_SUSPEND,
    SIM_F_CRASH_WORKER,
    SIM_F_CRASH_INSTANCE,
    SIM_F_RELEASE,
    SIM_F_RELOAD,
    SIM_F_RELOAD_TIMINGS,
    SIM_F_RELOAD_IDENTITY,
    SIM_F_FOREIGN_RECORD,
    SIM_F_FOREIGN_FREE,
    SIM_F_FOREIGN_OURS,
    SIM_F_FOREIGN_PYTHON,
    SIM_F_FOREIGN_LONG,
    SIM_F_FOREIGN_DELETE,
    SIM_F_KINDS
} sim_fault_t;

/* What makes a seed fail. */
typedef enum {
    SIM_V_OVERLAP = 0,     /* two instances' readers say leader */
    SIM_V_NOT_NAMED,       /* a leader the server does not name */
    SIM_V_RELEASED,        /* a leader after its release was requested */
    SIM_V_TERM,            /* the transition count did not grow */
    SIM_V_LIVENESS,        /* no stable leader after the faults stopped */
    SIM_V_EVENTS,          /* STARTED/STOPPED_LEADING out of order */
    SIM_V_HOST,            /* an UPDATE without resourceVersion, ... */
    SIM_V_OVERFLOW,        /* the simulator ran out of room */
    SIM_V_READER,          /* a reader's answer is not its own claim's */
    SIM_V_KINDS
} sim_violation_t;

typedef struct {
    uint64_t  seeds;
    uint64_t  failed;
    uint64_t  sim_ms;
    uint64_t  events;
    uint64_t  elections;         /* leadership changes seen by readers */
    uint64_t  started;           /* STARTED_LEADING */
    uint64_t  requests;
    uint64_t  conflicts;
    uint64_t  watch_events;
    uint64_t  faults[SIM_F_KINDS];
    uint64_t  violations[SIM_V_KINDS];
    uint64_t  foreign_overlaps;  /* two leaders: a short foreign lease */
    uint64_t  foreign_unnamed;   /* a leader not named: foreign, unread */
    uint64_t  term_resets;       /* fencing restarted by a foreign write */
    uint64_t  calm_lapses;       /* a lead lapsed after the faults */
    int64_t   worst_takeover;    /* ms from calm to a leader, worst */
    int64_t   worst_bound;       /* that run's bound */
    uint64_t  first_failed;      /* the lowest failing seed */
    int       first_violation;
    int64_t   first_at;          /* its simulated time of failure */
    char      first_why[256];
} sim_stats_t;

typedef struct {
    int64_t  ld, rd, rp;         /* ms */
} sim_timing_t;

/* The event queue. */
typedef enum {
    SIM_EV_WAKE = 0,     /* an elector's timer */
    SIM_EV_APPLY,        /* a request reaches the server */
    SIM_EV_ANSWER,       /* its answer reaches the host */
    SIM_EV_TIMEOUT,      /* the host gives up on it */
    SIM_EV_WATCH_OPEN,   /* a watch's answer starts */
    SIM_EV_WATCH_EVENT,  /* the head of a watch stream arrives */
    SIM_EV_WATCH_END,    /* the stream ends (drop, server timeout) */
    SIM_EV_FAULT,        /* inject the next process fault */
    SIM_EV_RESUME,       /* a paused instance runs again */
    SIM_EV_RESPAWN,      /* the master respawns an elector worker */
    SIM_EV_EXIT,         /* a quitting instance exits */
    SIM_EV_RESTART,      /* a crashed or quit instance starts again */
    SIM_EV_CALM,         /* faults stop */
    SIM_EV_CLAIM_END,    /* a published claim ends: the readers checked */
    SIM_EV_REAP          /* retired requests fail (kle_http_retire()) */
} sim_ev_type_t;

typedef struct {
    int64_t   t;
    uint64_t  key;       /* random tie-break among equal times */
    int       type;
    int       a;         /* instance or request */
    unsigned  tok;       /* stale events are ignored */
} sim_ev_t;

/* A change of the lock object, as the server keeps it for watches. */
typedef enum {
    SIM_W_CHANGE = 0,
    SIM_W_DELETED,
    SIM_W_BOOKMARK,
    SIM_W_GONE,          /* ERROR 410 Expired */
    SIM_W_END_DROP,      /* the connection breaks */
    SIM_W_END_CLOSE      /* the server ends the watch */
} sim_wkind_t;

/* What the stored object holds beyond the record: its raw holder (which
   may not fit a record) and a hand-written annotation (the Python client) */
typedef struct {
    char          holder[320];
    int           hlen;
    char          ann[400];
} sim_raw_t;

typedef struct {
    int           kind;
    int64_t       rv;
    kle_record_t  rec;
    sim_raw_t     raw;
} sim_change_t;

typedef struct {
    sim_change_t  c;
    int64_t       at;    /* delivery time */
    int           chaos;
} sim_wq_t;

typedef enum {
    SIM_REQ_MACHINE = 0,   /* the elector's GET, POST or PUT of the lock */
    SIM_REQ_RELIST,        /* its list after a 410 */
    SIM_REQ_WATCH          /* its watch */
} sim_req_role_t;

/* The simulated transport (sim_http.c): one per elector generation. */
struct kle_http_s {
    int               inst;
    int               gen;
};

/* A request of the transport, as kle_http.h's callers hold it. */
typedef struct kle_http_req_s {
    int               used;
    unsigned          tok;
    int               inst;
    int               gen;
    int               role;
    int               kind;          /* KLE_DO_GET, _CREATE, _UPDATE */
    kle_record_t      rec;
    char              rv[KLE_RV_MAX];
    int64_t           sent;
    int64_t           deadline;      /* sim time the host gives up */
    int               chaos;
    /* fate, drawn when sent */
    int               lost;
    int               answer_lost;
    kle_api_status_t  err_before;
    kle_api_status_t  err_after;
    int               retry_after;
    int64_t           down;          /* answer delay */
    /* the server's answer */
    int               applied;
    kle_api_status_t  status;
    kle_record_t      result;
    int64_t           result_rv;
    int64_t           list_rv;       /* a list's version */
    kle_record_t      result_raw_rec;
    sim_raw_t         result_raw;
    int               has_result;
    int               pending;       /* the host still waits for it */
    /* the transport's side */
    int               retired;       /* kle_http_retire(): fails soon */
    int64_t           heard;         /* mono ms: kle_http_heard() */
    kle_http_done_pt  done;
    kle_http_open_pt  on_open;
    kle_http_line_pt  on_line;
    void             *data;
} sim_req_t;

typedef enum {
    SIM_WS_NONE = 0,
    SIM_WS_CONNECTING,
    SIM_WS_OPEN
} sim_wstate_t;

typedef struct {
    int               gen;           /* 0: none */
    int               running;
    char              id[SIM_ID_MAX];
    sim_timing_t      tm;
    kle_elector_t    *elector;       /* lib/kle_elector.c, the real one */
    struct kle_http_s http;          /* its transport */
    kle_creds_t       creds;
    unsigned          wake_tok;
    int64_t           paused_until;  /* its worker SIGSTOPped */
    /* the watch: the request, and the server's stream to it */
    int               watch_req;     /* -1: none */
    int               ws;
    unsigned          wtok;
    int64_t           resume_rv;
    int64_t           wlimit;        /* ms: its timeoutSeconds, 0: none */
    sim_wq_t          wq[SIM_WQ];
    int               wq_head;
    int               wq_n;
    int64_t           wq_last;
    int               wq_armed;      /* a WATCH_EVENT is queued */
    int               wending;       /* no more events in this stream */
    /* as the callbacks tell it */
    int               leading;
    int               inherit;
    int               releasing;
    int64_t           write_rv;      /* rv of the last successful write */
    int64_t           spin_t;        /* runs at one instant, to catch */
    int               spin;          /* a machine that never waits */
} sim_elector_t;

/* What the module's shared zone publishes for the readers. */
typedef struct {
    int               leading;
    int64_t           claim_until;   /* mono ms, 0: none */
    int32_t           term;
    int64_t           renew_start;   /* only for a planted bug */
    int64_t           claim_rv;      /* the write that made the claim */
    int               gen;
    char              id[SIM_ID_MAX];
} sim_pub_t;

typedef struct {
    int               up;            /* the instance runs */
    int               secs;          /* sees record times in seconds */
    int               life;
    char              name[8];
    int64_t           rate;          /* mono ppm of sim time */
    int64_t           mono_off;
    int64_t           wall_off;      /* us */
    int64_t           susp_t[SIM_SUSP];  /* suspended from, sim ms */
    int64_t           susp_d[SIM_SUSP];  /* for so long */
    int               nsusp;
    int64_t           paused_until;  /* the whole instance SIGSTOPped */
    int64_t           cut_until;     /* cut off from the API */
    int64_t           release_at;    /* release asked in this life, -1 */
    int               quitting;
    int64_t           restart_at;    /* after a quit: drain, exit, start */
    int64_t           seen_rv;       /* newest rv read, not naming it */
    int               ids;           /* identity changes */
    int               pool;          /* its configuration's timings */
    sim_pub_t         pub;
    /* the module's shared zone: pub's claim, as lib/kle_claim writes it */
    kle_seqlock_t     zlock;
    kle_claim_t       zclaim;
    sim_elector_t     el;
} sim_inst_t;

typedef struct {
    int64_t           t;
    int64_t           rv;
    int64_t           lease;         /* ms an honest follower waits */
    char              holder[SIM_ID_MAX];
} sim_foreign_t;

typedef struct {
    /* the run */
    uint64_t          seed;
    uint64_t          rng;
    int               trace;
    int64_t           t;
    int64_t           end;
    int               chaos;
    int64_t           calm_at;       /* faults stop being injected */
    int64_t           horizon;       /* last effect of a fault */
    int64_t           calm_start;    /* max(calm_at, horizon) */
    int64_t           calm_bound;    /* a leader is due by start + this */
    unsigned          tok;
    int               gens;
    int               nheap;         /* events in sim_heap */
    /* configuration */
    int               n;
    int               whole_seconds; /* a configmaps-like store */
    int               twins;         /* instances 0 and 1 share an identity */
    int               secs;          /* client-go-like followers too */
    sim_timing_t      pool[SIM_POOL];
    int               npool;
    int64_t           rate_min;
    int64_t           rate_max;
    int64_t           dmax;          /* one-way delay, ms, no faults */
    int64_t           wlag;          /* watch lag, ms, no faults */
    /* fault profile: per mille, per request or per event */
    int               p_delay, p_lost, p_answer_lost, p_late, p_err,
                      p_err_after, p_throttle;
    int               p_wlag, p_wdrop, p_wgone, p_bookmark;
    int64_t           wclose_min;
    int64_t           fault_mean;    /* ms between process faults */
    int               fw[SIM_F_KINDS];
    /* the server */
    int               exists;
    kle_record_t      rec;
    int64_t           rv;            /* of the object */
    int64_t           counter;       /* the global resourceVersion */
    sim_change_t      hist[SIM_HIST];
    int               hist_n;
    int               hist_head;
    int64_t           compacted;     /* watches from below this get 410 */
    sim_foreign_t     foreign[SIM_FOREIGN];
    int               nforeign;
    int64_t           foreign_rv;    /* the last foreign write's rv */
    int64_t           foreign_lease; /* the longest foreign record's, ms */
    sim_raw_t         raw;           /* of the object */
    kle_lock_t        lock;          /* the lock's kind, to read bodies */
    /* the world */
    sim_inst_t        inst[SIM_INST_MAX];
    /* the checker */
    int               leader;        /* instance readers say leads, -1 */
    int               overlap_pair;  /* a * 8 + b of the current overlap */
    int               last_leader;
    char              last_id[SIM_ID_MAX];
    int32_t           last_term;
    int64_t           last_claim_rv;
    int               unnamed;       /* inside an excused not-named span */
    int64_t           first_calm_leader;
    int               calm_leader;
    char              calm_id[SIM_ID_MAX];
    int               calm_lapsed;
    int               v_first;
    char              why[256];
    sim_stats_t      *st;
} sim_t;

extern sim_t      sim;
extern sim_ev_t   sim_heap[SIM_HEAP_MAX];
extern sim_req_t  sim_req[SIM_REQ_MAX];    /* reset by used = 0 */

/* sim_world.c */
uint64_t sim_rand(uint64_t n);
int sim_chance(int per_mille);
int64_t sim_between(int64_t lo, int64_t hi);
void sim_push(int64_t t, int type, int a, unsigned tok);
void sim_horizon(int64_t t);
int64_t sim_boot(const sim_inst_t *in, int64_t t);
int64_t sim_monotonic(const sim_inst_t *in, int64_t t);
int64_t sim_wall(const sim_inst_t *in, int64_t t);

/* sim_clock.c: what lib/kle_clock.c's kle_now_ms() reads, and its inverse */
int64_t sim_mono(const sim_inst_t *in, int64_t t);
int64_t sim_at_mono(const sim_inst_t *in, int64_t mono);
void sim_clock_enter(const sim_inst_t *in, int64_t t);
void sim_clock_leave(void);
void sim_fault(int kind);
int sim_run(uint64_t seed, int trace, sim_stats_t *st);

/* sim_server.c */
void sim_server_init(void);
int sim_send(int i, int role, int kind, const kle_record_t *rec,
    const char *rv, int64_t timeout);
int sim_wq_pop(int i, sim_change_t *c);
void sim_apply(int r);
void sim_foreign_write(int kind);
void sim_watch_start(int i, int64_t rv, int64_t limit);
void sim_watch_open(int i, unsigned tok);
void sim_watch_cancel(sim_elector_t *el);
void sim_watch_close_at(int i, unsigned tok);
int sim_names(const kle_record_t *rec, const char *id);
/* instance i's nonce: new with each process of it (a restart), kept by
   reloads and respawned workers */
void sim_nonce(int i, char *buf);

/* sim_http.c: lib/kle_http.h over the simulated network */
void sim_http_answer(int r, int timed_out);
void sim_http_watch_opened(int i);
void sim_http_watch_failed(int i);
void sim_http_watch_event(int i);
void sim_http_reap(int i);
void sim_http_free(int r);

/* sim_host.c */
void sim_host_start(int i, int pool, int new_id);
void sim_host_run(int i);
void sim_host_enter(int i);
void sim_host_leave(int i);
void sim_host_stop(int i);
void sim_host_release(int i);
void sim_host_reload(int i, int pool, int new_id);
void sim_host_end(void);
int sim_reader_leader(sim_inst_t *in, int64_t t, int32_t *token);
int sim_claim_holds(const sim_inst_t *in, int64_t t);
void sim_zone_write(int i);

/* sim_check.c */
void sim_check(void);
void sim_check_write(int i, int kind, const kle_record_t *old, int existed,
    const kle_record_t *rec);
void sim_violation(int v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sim_check_end(void);

/* sim_trace.c */
void sim_trace_setup(void);
void sim_tr(int i, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *sim_rec_text(const kle_record_t *rec, char *buf, size_t size);
const char *sim_fault_name(int kind);
const char *sim_violation_name(int v);
const char *sim_status_name(kle_api_status_t s);

#define TR(i, ...)  do { if (sim.trace) sim_tr(i, __VA_ARGS__); } while (0)

#endif /* SIM_H */
