/* gpio.h: pin function selection for the UART pins. */
#ifndef GPIO_H
#define GPIO_H

#include "types.h"

enum gpio_func { GPIO_ALT0 = 4, GPIO_ALT5 = 2 };

/* gpio_use_for_uart: GPIO 14/15 to func, pull-up/down off. */
void gpio_use_for_uart(enum gpio_func func);

#endif
