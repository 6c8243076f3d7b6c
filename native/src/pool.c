/* A persistent pthread pool. The JS thread that calls in takes part in the work, so a pool of
 * N threads has N - 1 workers. Work is handed out one index at a time through an atomic counter,
 * which balances uneven tasks (ragged last tiles, batches not divisible by the thread count).
 * When the caller runs out of tasks it closes the job and waits only for workers that actually
 * joined it: on a busy machine a worker that was never scheduled must not stall the call. */
#define _GNU_SOURCE
#include "vswin.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
vswin_fp_state vswin_fp_enter(void) {
  unsigned state = _mm_getcsr();
  _mm_setcsr(state | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
  return state;
}
void vswin_fp_leave(vswin_fp_state state) { _mm_setcsr((unsigned)state); }
#elif defined(__aarch64__)
vswin_fp_state vswin_fp_enter(void) {
  uint64_t state;
  __asm__ volatile("mrs %0, fpcr" : "=r"(state));
  uint64_t flushed = state | (1ull << 24); /* FZ */
  __asm__ volatile("msr fpcr, %0" : : "r"(flushed));
  return state;
}
void vswin_fp_leave(vswin_fp_state state) { __asm__ volatile("msr fpcr, %0" : : "r"(state)); }
#else
vswin_fp_state vswin_fp_enter(void) { return 0; }
void vswin_fp_leave(vswin_fp_state state) { (void)state; }
#endif

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int pool_threads = 1;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER;
/* Only one caller drives the pool at a time; a second concurrent caller (another JS worker
 * thread) runs its work inline instead of waiting. */
static pthread_mutex_t pool_owner = PTHREAD_MUTEX_INITIALIZER;
static unsigned long pool_generation;
static int job_open;    /* workers may still join the current job */
static int pool_active; /* workers inside the current job */
static vswin_task job_task;
static void *job_context;
static long job_count;
static atomic_long job_next;

static void run_job(void) {
  for (;;) {
    long index = atomic_fetch_add_explicit(&job_next, 1, memory_order_relaxed);
    if (index >= job_count) break;
    job_task(job_context, index);
  }
}

static void *worker_main(void *unused) {
  (void)unused;
  unsigned long seen = 0;
  pthread_mutex_lock(&pool_lock);
  for (;;) {
    while (pool_generation == seen) pthread_cond_wait(&pool_wake, &pool_lock);
    seen = pool_generation;
    if (!job_open) continue; /* woke after the caller finished everything */
    pool_active++;
    pthread_mutex_unlock(&pool_lock);
    vswin_fp_state state = vswin_fp_enter();
    run_job();
    vswin_fp_leave(state);
    pthread_mutex_lock(&pool_lock);
    if (--pool_active == 0 && !job_open) pthread_cond_signal(&pool_done);
  }
  return NULL;
}

static void pool_start(void) {
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = online > 0 ? (int)online : 1;
  const char *override = getenv("VSWIN_THREADS");
  if (override && atoi(override) > 0) threads = atoi(override);
  if (threads > 64) threads = 64;
  pool_threads = 1;
  for (int i = 1; i < threads; i++) {
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attributes, worker_main, NULL) == 0) pool_threads++;
    pthread_attr_destroy(&attributes);
  }
}

int vswin_thread_count(void) {
  pthread_once(&pool_once, pool_start);
  return pool_threads;
}

void vswin_parallel(long count, vswin_task task, void *context) {
  pthread_once(&pool_once, pool_start);
  if (count <= 0) return;
  if (pool_threads == 1 || count == 1 || pthread_mutex_trylock(&pool_owner) != 0) {
    vswin_fp_state state = vswin_fp_enter();
    for (long i = 0; i < count; i++) task(context, i);
    vswin_fp_leave(state);
    return;
  }
  pthread_mutex_lock(&pool_lock);
  job_task = task;
  job_context = context;
  job_count = count;
  atomic_store(&job_next, 0);
  job_open = 1;
  pool_active = 0;
  pool_generation++;
  pthread_cond_broadcast(&pool_wake);
  pthread_mutex_unlock(&pool_lock);

  vswin_fp_state state = vswin_fp_enter();
  run_job();
  vswin_fp_leave(state);

  pthread_mutex_lock(&pool_lock);
  job_open = 0;
  while (pool_active > 0) pthread_cond_wait(&pool_done, &pool_lock);
  pthread_mutex_unlock(&pool_lock);
  pthread_mutex_unlock(&pool_owner);
}
