// waker: N threads, each sleeping S microseconds at a time with nanosleep
// and doing nothing else, for T seconds: the CPUs go idle and are woken
// thousands of times a second while the machine counts itself nearly idle.
// Usage: cc -O2 -pthread -o /tmp/waker bench/waker/waker.c && /tmp/waker N S T
// (BENCHMARKS.md, "What brings the host's pauses on": not wake-ups).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static long us; static double secs;
static void *run(void *a) {
  struct timespec ts = {0, us * 1000}, t0, t1; long n = 0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) { nanosleep(&ts, NULL); n++;
    if ((n & 255) == 0) { clock_gettime(CLOCK_MONOTONIC, &t1);
      if (t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9 > secs) break; } }
  *(long *)a = n; return NULL;
}
int main(int c, char **v) {
  int n = atoi(v[1]); us = atol(v[2]); secs = atof(v[3]);
  pthread_t t[64]; long cnt[64];
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, run, &cnt[i]);
  long tot = 0; for (int i = 0; i < n; i++) { pthread_join(t[i], NULL); tot += cnt[i]; }
  printf("waker: %d threads, %ld wake-ups/s\n", n, (long)(tot / secs));
  return 0;
}
