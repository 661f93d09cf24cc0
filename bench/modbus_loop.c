/* Native reference for bench/poll.py: a libmodbus client reading the same register blocks in a loop.
 * Usage: modbus_loop HOST PORT UNIT SECONDS ADDR:COUNT [ADDR:COUNT ...]   (FC3 holding registers)
 *        prefix a block with i (e.g. i1:2) for FC4 input registers.
 * Prints: "<requests> <seconds>" on success. */
#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s HOST PORT UNIT SECONDS [i]ADDR:COUNT...\n", argv[0]);
        return 2;
    }
    modbus_t *ctx = modbus_new_tcp(argv[1], atoi(argv[2]));
    if (ctx == NULL || modbus_connect(ctx) == -1) {
        fprintf(stderr, "connect: %s\n", modbus_strerror(errno));
        return 1;
    }
    modbus_set_slave(ctx, atoi(argv[3]));
    double seconds = atof(argv[4]);
    int nblocks = argc - 5;
    int addr[64], count[64], input[64];
    for (int i = 0; i < nblocks && i < 64; i++) {
        const char *spec = argv[5 + i];
        input[i] = spec[0] == 'i';
        if (input[i]) spec++;
        if (sscanf(spec, "%d:%d", &addr[i], &count[i]) != 2) {
            fprintf(stderr, "bad block %s\n", argv[5 + i]);
            return 2;
        }
    }
    uint16_t regs[130];
    long requests = 0;
    double start = now(), end = start + seconds;
    while (now() < end) {
        for (int i = 0; i < nblocks; i++) {
            int rc = input[i] ? modbus_read_input_registers(ctx, addr[i], count[i], regs)
                              : modbus_read_registers(ctx, addr[i], count[i], regs);
            if (rc != count[i]) {
                fprintf(stderr, "read %d:%d failed: %s\n", addr[i], count[i], modbus_strerror(errno));
                return 1;
            }
            requests++;
        }
    }
    printf("%ld %.6f\n", requests, now() - start);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}
