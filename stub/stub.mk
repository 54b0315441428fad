# stub: rules added by the stub work.
STUB_SRCS := $(wildcard stub/*.c)
STUB_HDRS := $(wildcard stub/*.h)

$(BUILD)/vmcore-gdbserver: $(STUB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libmemmodel.a
	$(CC) $(OPT_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/san/vmcore-gdbserver: $(STUB_SRCS:%.c=$(BUILD)/san/%.o) $(BUILD)/san/libmemmodel.a
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS)
