/*
 * floor: a bare epoll SSE broadcast server, the cost floor for scripts/bench.sh.
 *
 * Not a product: no topics, no replay, no limits beyond the queue bound, no error
 * answers beyond dropping the connection. It exists to measure, on this machine and
 * with the same load tool, what the kernel's loopback TCP path costs when user space
 * does next to nothing, so BENCHMARKS.md can say how far ssehub is from that floor.
 *
 * One thread, one epoll set. `GET /sub` gets an event-stream head and becomes a
 * subscriber; `POST /pub` (keep-alive, Content-Length body) is answered 202 at once and
 * its body becomes one frame `event: soak\ndata: BODY\n\n`, allocated once and shared
 * by reference count. Each subscriber has a ring of up to 100 frame references (full:
 * the subscriber is closed, as ssehub evicts); subscribers with something queued are on
 * a FIFO "dirty" list, and each loop turn writes at most FLUSH_PER_TURN of them, each
 * with one writev of everything it is owed, before taking in new requests
 * (epoll_wait with timeout 0 while anything is dirty). So a busy publisher makes
 * batches, as it does for ssehub's writers. TCP_NODELAY on every accepted socket.
 *
 * Build: gcc -O2 -o floor bench/floor.c     Run: floor PORT [SUBSCRIBERS_WRITTEN_PER_TURN]
 * On SIGTERM it prints frames written, writev calls and frames per call to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define QCAP 100
#define FLUSH_PER_TURN 64
#define HEAD_MAX 16384
#define BODY_MAX (1 << 20)

struct frame {
    long refs;
    size_t len;
    char bytes[];
};

enum kind { K_REQ, K_SUB };

struct conn {
    int fd;
    enum kind kind;
    /* request side */
    char *in;
    size_t in_len, in_cap;
    /* subscriber side */
    struct frame *q[QCAP];
    int q_head, q_len;
    size_t q_off; /* bytes of q[q_head] already written */
    int dirty;
    int in_subs;
    int want_out;
    struct conn *next_dirty;
};

static int ep;
static int flush_per_turn = FLUSH_PER_TURN;
static unsigned long frames_written, write_calls;
static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }
static struct conn *dirty_head, *dirty_tail;
static long nsubs;

static void frame_unref(struct frame *f) {
    if (--f->refs == 0) free(f);
}

/* A closed connection is freed once neither the dirty list nor the subscriber array
 * holds it. */
static void maybe_free(struct conn *c) {
    if (c->fd < 0 && !c->dirty && !c->in_subs) free(c);
}

static void conn_close(struct conn *c) {
    /* A dirty subscriber is unlinked lazily: its fd is set to -1 and the flush skips it. */
    close(c->fd);
    c->fd = -1;
    free(c->in);
    c->in = NULL;
    while (c->q_len > 0) {
        frame_unref(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) % QCAP;
        c->q_len--;
    }
    if (c->kind == K_SUB) nsubs--;
    maybe_free(c);
}

static void mark_dirty(struct conn *c) {
    if (c->dirty) return;
    c->dirty = 1;
    c->next_dirty = NULL;
    if (dirty_tail) dirty_tail->next_dirty = c; else dirty_head = c;
    dirty_tail = c;
}

/* Every subscriber, for the broadcast (a plain growable array). */
static struct conn **subs;
static size_t subs_len, subs_cap;

static void broadcast(const char *body, size_t n) {
    static const char pre[] = "event: soak\ndata: ";
    struct frame *f = malloc(sizeof *f + sizeof pre - 1 + n + 2);
    if (!f) return;
    f->refs = 1;
    memcpy(f->bytes, pre, sizeof pre - 1);
    memcpy(f->bytes + sizeof pre - 1, body, n);
    memcpy(f->bytes + sizeof pre - 1 + n, "\n\n", 2);
    f->len = sizeof pre - 1 + n + 2;
    size_t j = 0;
    for (size_t i = 0; i < subs_len; i++) {
        struct conn *c = subs[i];
        if (c->q_len == QCAP) conn_close(c); /* full: evict */
        if (c->fd < 0) { /* closed: drop from the array */
            c->in_subs = 0;
            maybe_free(c);
            continue;
        }
        f->refs++;
        c->q[(c->q_head + c->q_len) % QCAP] = f;
        c->q_len++;
        if (!c->want_out) mark_dirty(c);
        subs[j++] = c;
    }
    subs_len = j;
    frame_unref(f);
}

/* Writes what c is owed in one writev. Returns -1 when the connection failed. */
static int flush(struct conn *c) {
    struct iovec iov[QCAP];
    int n = 0;
    for (int i = 0; i < c->q_len && n < 64; i++) {
        struct frame *f = c->q[(c->q_head + i) % QCAP];
        size_t off = i == 0 ? c->q_off : 0;
        iov[n].iov_base = f->bytes + off;
        iov[n].iov_len = f->len - off;
        n++;
    }
    if (n == 0) return 0;
    ssize_t w = writev(c->fd, iov, n);
    write_calls++;
    if (w < 0) {
        if (errno == EAGAIN) w = 0; else return -1;
    }
    while (w > 0) {
        struct frame *f = c->q[c->q_head];
        size_t left = f->len - c->q_off;
        if ((size_t)w >= left) {
            w -= left;
            c->q_off = 0;
            frames_written++;
            frame_unref(f);
            c->q_head = (c->q_head + 1) % QCAP;
            c->q_len--;
        } else {
            c->q_off += w;
            w = 0;
        }
    }
    if (c->q_len > 0 && !c->want_out) {
        /* the socket is full (or 64 frames went out): wait for EPOLLOUT */
        c->want_out = 1;
        struct epoll_event ev = {.events = EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

static void flush_some(void) {
    for (int k = 0; k < flush_per_turn && dirty_head; k++) {
        struct conn *c = dirty_head;
        dirty_head = c->next_dirty;
        if (!dirty_head) dirty_tail = NULL;
        c->dirty = 0;
        if (c->fd < 0) {
            maybe_free(c);
            continue;
        }
        if (flush(c) < 0) conn_close(c);
    }
}

static void on_request(struct conn *c) {
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
            if (cap > HEAD_MAX + BODY_MAX) { conn_close(c); return; }
            c->in = realloc(c->in, cap);
            c->in_cap = cap;
        }
        ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (r == 0) { conn_close(c); return; }
        if (r < 0) {
            if (errno == EAGAIN) break;
            conn_close(c);
            return;
        }
        c->in_len += r;
    }
    size_t pos = 0;
    for (;;) {
        char *start = c->in + pos;
        size_t avail = c->in_len - pos;
        char *end = memmem(start, avail, "\r\n\r\n", 4);
        if (!end) break;
        size_t head_len = end + 4 - start;
        if (avail >= 8 && memcmp(start, "GET /sub", 8) == 0) {
            static const char h[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                    "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
            if (write(c->fd, h, sizeof h - 1) != (ssize_t)(sizeof h - 1)) { conn_close(c); return; }
            free(c->in);
            c->in = NULL;
            c->in_len = c->in_cap = 0;
            c->kind = K_SUB;
            nsubs++;
            if (subs_len == subs_cap) {
                subs_cap = subs_cap ? subs_cap * 2 : 1024;
                subs = realloc(subs, subs_cap * sizeof *subs);
            }
            subs[subs_len++] = c;
            c->in_subs = 1;
            struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
        if (avail >= 9 && memcmp(start, "POST /pub", 9) == 0) {
            size_t clen = 0;
            char *cl = memmem(start, head_len, "\r\nContent-Length:", 17);
            if (!cl) cl = memmem(start, head_len, "\r\ncontent-length:", 17);
            if (cl) clen = strtoul(cl + 17, NULL, 10);
            if (clen > BODY_MAX) { conn_close(c); return; }
            if (avail < head_len + clen) break;
            broadcast(start + head_len, clen);
            static const char a[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
            if (write(c->fd, a, sizeof a - 1) != (ssize_t)(sizeof a - 1)) { conn_close(c); return; }
            pos += head_len + clen;
            continue;
        }
        if (avail >= 11 && memcmp(start, "GET /health", 11) == 0) {
            static const char a[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
            if (write(c->fd, a, sizeof a - 1) < 0) { conn_close(c); return; }
            pos += head_len;
            continue;
        }
        conn_close(c);
        return;
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: floor PORT [SUBSCRIBERS_WRITTEN_PER_TURN]\n");
        return 2;
    }
    if (argc == 3) flush_per_turn = atoi(argv[2]);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                            .sin_addr.s_addr = htonl(0x7f000001)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
        perror("floor: bind/listen");
        return 1;
    }
    ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, dirty_head ? 0 : -1);
        if (n < 0) continue;
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (c->fd < 0) continue;
            if (c->kind == K_REQ) {
                on_request(c);
            } else if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                conn_close(c);
            } else if (evs[i].events & EPOLLOUT) {
                c->want_out = 0;
                struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                if (flush(c) < 0) conn_close(c);
            }
        }
        flush_some();
    }
    fprintf(stderr, "floor: frames_written %lu write_calls %lu frames_per_write %.2f\n",
            frames_written, write_calls, write_calls ? (double)frames_written / write_calls : 0.0);
    return 0;
}
