# memmodel: dump readers, address translation, kernel model (a library, no protocol knowledge).
MEMMODEL_SRCS := $(wildcard memmodel/*.c)
MEMMODEL_HDRS := $(wildcard memmodel/*.h)

$(BUILD)/libmemmodel.a: $(MEMMODEL_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(@D)
	ar rcs $@ $^

$(BUILD)/san/libmemmodel.a: $(MEMMODEL_SRCS:%.c=$(BUILD)/san/%.o)
	@mkdir -p $(@D)
	ar rcs $@ $^

$(BUILD)/%.o: %.c $(MEMMODEL_HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(OPT_CFLAGS) -c -o $@ $<

$(BUILD)/san/%.o: %.c $(MEMMODEL_HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD_CFLAGS) $(SAN_CFLAGS) -c -o $@ $<
